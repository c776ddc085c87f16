"""CDRL on SVHN (32x32), the CIFAR-10 defaults without flips.

    python -m coopjax.main --config=configs/svhn.py --workdir=runs/svhn
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cifar10  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config():
  c = cifar10.get_config()
  c.data.update(name='svhn_cropped', random_flip=False)
  c.task.ood_data = 'cifar10'
  return c
