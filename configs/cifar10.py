"""CDRL on CIFAR-10 with the paper's training settings (docs/algorithms.md, section 2;
the networks still depart from the authors' in the ways listed in section 5.1).

    python -m coopjax.main --config=configs/cifar10.py --workdir=runs/cifar10

Variants: ``:large`` (256 base channels), ``:drl`` (the DRL baseline with the
DRL authors' settings: no initializer, integer level input, independent pair
noise, K = 30, linear schedule, warm-up 1000, no clipping, EMA 0.999, sampling
noise 0.99, the DRL authors' network; docs/algorithms.md, section 2.11). The
data must be prepared offline in ``--config.data.tfds_dir`` (see README, "Image data"). FID needs converted
Inception weights: ``--config.eval.inception_path=inception_fid.npz`` (see
docs/fid.md). Tasks on a trained run: ``--mode=fewer_steps``, ``--mode=ood``
(against ``task.ood_data``), ``--mode=inpaint``.

Shrink for a laptop with overrides, e.g. ``--config.model.width=32
--config.model.blocks_per_res=1 --config.data.batch_size=16``.
"""

from coopjax.config import cdrl as base
from coopjax.config import variants


def get_config(variant: str = ''):
  """Returns the config; ``variant`` is '', 'large' or 'drl'."""
  return variants.apply(base.get_config(), variant,
                        {**base.VARIANTS, 'large': base.large}, __file__)
