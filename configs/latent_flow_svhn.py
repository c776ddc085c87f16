"""Latent flow prior + top-down generator on SVHN (32x32), the authors'
settings (their README's command; departures: docs/algorithms.md, section 4).

    python -m coopjax.main --config=configs/latent_flow_svhn.py --workdir=runs/lf_svhn

Latent dimension 100, the authors' flow prior (5 steps, width 64), their
generator (ngf 64: 512 -> 256 -> 128 -> 3 from 4x4, Xavier init), sigma 0.3,
K = 20 posterior Langevin steps of size 0.1, Adam 4e-4 with betas
(0.5, 0.999) on both networks, decayed by 0.998 per epoch, batch 100,
201 epochs, no EMA, no flips; reconstruction with 400 noise-free steps. The data must be prepared offline in
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
