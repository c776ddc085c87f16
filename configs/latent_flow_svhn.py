"""Latent flow prior + top-down generator on SVHN (32x32), the paper's settings
as far as coopjax has them (docs/algorithms.md, sections 4 and 5.3).

    python -m coopjax.main --config=configs/latent_flow_svhn.py --workdir=runs/lf_svhn

Latent dimension 100, flow prior of 5 steps (width 64), DCGAN-style generator
(64 channels before the last upsampling, 4x4 -> 32x32), sigma 0.3, K = 20
posterior Langevin steps of size 0.1, Adam 3e-4 with betas (0.5, 0.999),
batch 100, no EMA. The data must be prepared offline in
``--config.data.tfds_dir`` (see README, "Image data").

Variants (comma-separated, e.g. ``:gaussian,corrupt``): ``gaussian`` (the
prior-only ablation: ``N(0, I)`` prior, no flow), ``corrupt`` (train on
images missing 30% of their pixels, the mask in the likelihood).
Tasks on a trained run: ``--mode=generate``, ``--mode=reconstruct``,
``--mode=inpaint``, ``--mode=recover`` (``corrupt`` runs), ``--mode=anomaly``
(with ``--config.data.holdout_class``).
"""

from coopjax.config import latent_flow as base
from coopjax.config import variants


def get_config(variant: str = ''):
  """Returns the config; ``variant``: comma-separated 'gaussian', 'corrupt'."""
  return variants.apply(base.get_config(), variant, base.VARIANTS, __file__,
                        combine=True)
