"""CDRL on CelebA 64x64 conditioned on attributes, for composing concepts.

    python -m coopjax.main --config=configs/celeba_compose.py --workdir=runs/celeba_compose
    python -m coopjax.main --config=configs/celeba_compose.py --workdir=runs/celeba_compose --mode=compose

Each binary attribute of ``data.attributes`` (Male, Smiling, Young) is two
concepts (absent / present); a training example is conditioned on one of its
attributes at random (or on null with probability 0.1). ``--mode=compose``
samples ``f(y|null) + sum_i (1 + w) [f(y|c_i) - f(y|null)]`` for
``task.concepts`` (default: male, smiling, young). Five resolutions for 64x64.

Variant ``:drl``: the DRL baseline (no initializer, K = 30, linear schedule).
"""

from coopjax.config import cdrl as base
from coopjax.config import variants


def get_config(variant: str = ''):
  """Returns the config; ``variant`` is '' or 'drl'."""
  c = base.celeba64(base.get_config())
  c.data.attributes = ('Male', 'Smiling', 'Young')
  c.model.num_classes = 6
  c.task.update(concepts=((0, 1), (1, 1), (2, 1)), compose_weight=1.0,
                num=64)
  return variants.apply(c, variant, base.VARIANTS, __file__)
