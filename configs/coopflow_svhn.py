"""CoopFlow on SVHN (32x32): the CIFAR-10 defaults without flips.

    python -m coopjax.main --config=configs/coopflow_svhn.py --workdir=runs/cf_svhn

CoopFlow(pre)::

    python -m coopjax.main --config=configs/coopflow_svhn.py:pretrain --workdir=runs/cf_svhn_flow
    python -m coopjax.main --config=configs/coopflow_svhn.py:pre --workdir=runs/cf_svhn_pre \\
        --config.coopflow.flow_init=runs/cf_svhn_flow
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import coopflow_cifar10  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config(variant: str = ''):
  """Returns the config; ``variant`` is '', 'pretrain' or 'pre'."""
  c = coopflow_cifar10.get_config(variant)
  c.data.update(name='svhn_cropped', random_flip=False)
  return c
