"""CDRL on CelebA 64x64 for inpainting (unconditional, five resolutions).

    python -m coopjax.main --config=configs/celeba_inpaint.py --workdir=runs/celeba_inpaint
    python -m coopjax.main --config=configs/celeba_inpaint.py --workdir=runs/celeba_inpaint --mode=inpaint

``--mode=inpaint`` noises the observed pixels to each level, resets them after
every proposal and Langevin step, and keeps them exactly in the output;
``--config.task.mask=free`` uses free-form strokes instead of the centre square.

Variant ``:drl``: the DRL baseline (no initializer, K = 30, linear schedule).
"""

from coopjax.config import cdrl as base
from coopjax.config import variants


def get_config(variant: str = ''):
  """Returns the config; ``variant`` is '' or 'drl'."""
  c = base.celeba64(base.get_config())
  c.task.update(mask='square', num=64)
  return variants.apply(c, variant, base.VARIANTS, __file__)
