"""CoopFlow on CelebA at 32x32: the CIFAR-10 defaults on faces (centre-cropped and resized by the data loader).

    python -m coopjax.main --config=configs/coopflow_celeba.py --workdir=runs/cf_celeba

CoopFlow(pre)::

    python -m coopjax.main --config=configs/coopflow_celeba.py:pretrain --workdir=runs/cf_celeba_flow
    python -m coopjax.main --config=configs/coopflow_celeba.py:pre --workdir=runs/cf_celeba_pre \\
        --config.coopflow.flow_init=runs/cf_celeba_flow
"""

from coopjax.config import coopflow as base
from coopjax.config import variants


def get_config(variant: str = ''):
  """Returns the config; ``variant`` is '', 'pretrain' or 'pre'."""
  c = base.get_config()
  c.data.update(name='celeb_a', random_flip=True)
  return variants.apply(c, variant, base.VARIANTS, __file__)
