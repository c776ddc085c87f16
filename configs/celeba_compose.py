"""CDRL on CelebA 64x64 conditioned on attributes, for composing concepts.

    python -m coopjax.main --config=configs/celeba_compose.py --workdir=runs/celeba_compose
    python -m coopjax.main --config=configs/celeba_compose.py --workdir=runs/celeba_compose --mode=compose

The paper's composition set-up (section 4.5, appendix B.1, table 6): the EBM
is conditional on the attributes, with five resolutions of 2 residual blocks
(128, 256, 256, 256, 256 channels); the initializer is an unconditional U-Net
with 64 channels at every resolution. Each binary attribute of
``data.attributes`` (Male, Smiling, Young) is two concepts (absent /
present); a training example is conditioned on one of its attributes at
random (or on null with probability 0.1). ``--mode=compose`` samples the EBM
``f(y|null) + sum_i (1 + w) [f(y|c_i) - f(y|null)]`` for ``task.concepts``
(default: male, smiling, young), starting every chain from the unconditional
initializer's proposal.

Variant ``:drl``: the DRL baseline (docs/algorithms.md, section 2.11).
"""

from coopjax.config import cdrl as base
from coopjax.config import variants


def get_config(variant: str = ''):
  """Returns the config; ``variant`` is '' or 'drl'."""
  c = base.celeba64(base.get_config())
  c.data.attributes = ('Male', 'Smiling', 'Young')
  c.model.update(num_classes=6, blocks_per_res=2, init_mults=(1, 1, 1, 1),
                 init_conditional=False)
  c.task.update(concepts=((0, 1), (1, 1), (2, 1)), compose_weight=1.0,
                num=64)
  return variants.apply(c, variant, base.VARIANTS, __file__)
