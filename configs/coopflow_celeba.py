"""CoopFlow on CelebA at 32x32: the CIFAR-10 defaults on faces (centre-cropped and resized by the data loader).

    python -m coopjax.main --config=configs/coopflow_celeba.py --workdir=runs/cf_celeba

CoopFlow(pre)::

    python -m coopjax.main --config=configs/coopflow_celeba.py:pretrain --workdir=runs/cf_celeba_flow
    python -m coopjax.main --config=configs/coopflow_celeba.py:pre --workdir=runs/cf_celeba_pre \\
        --config.coopflow.flow_init=runs/cf_celeba_flow
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import coopflow_cifar10  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config(variant: str = ''):
  """Returns the config; ``variant`` is '', 'pretrain' or 'pre'."""
  c = coopflow_cifar10.get_config(variant)
  c.data.update(name='celeb_a', random_flip=True)
  return c
