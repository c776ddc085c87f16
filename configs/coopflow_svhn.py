"""CoopFlow on SVHN (32x32): the CIFAR-10 defaults without flips.

    python -m coopjax.main --config=configs/coopflow_svhn.py --workdir=runs/cf_svhn

CoopFlow(pre)::

    python -m coopjax.main --config=configs/coopflow_svhn.py:pretrain --workdir=runs/cf_svhn_flow
    python -m coopjax.main --config=configs/coopflow_svhn.py:pre --workdir=runs/cf_svhn_pre \\
        --config.coopflow.flow_init=runs/cf_svhn_flow
"""

from coopjax.config import coopflow as base
from coopjax.config import variants


def get_config(variant: str = ''):
  """Returns the config; ``variant`` is '', 'pretrain' or 'pre'."""
  c = base.get_config()
  c.data.update(name='svhn_cropped', random_flip=False)
  return variants.apply(c, variant, base.VARIANTS, __file__)
