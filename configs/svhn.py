"""CDRL on SVHN (32x32), the CIFAR-10 defaults without flips.

    python -m coopjax.main --config=configs/svhn.py --workdir=runs/svhn

Variant ``:drl``: the DRL baseline (no initializer, K = 30, linear schedule).
"""

from coopjax.config import cdrl as base
from coopjax.config import variants


def get_config(variant: str = ''):
  """Returns the config; ``variant`` is '' or 'drl'."""
  c = base.get_config()
  c.data.update(name='svhn_cropped', random_flip=False)
  c.task.ood_data = 'cifar10'
  return variants.apply(c, variant, base.VARIANTS, __file__)
