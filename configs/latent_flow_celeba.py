"""Latent flow prior + top-down generator on CelebA (64x64).

    python -m coopjax.main --config=configs/latent_flow_celeba.py --workdir=runs/lf_celeba

The SVHN settings (configs/latent_flow_svhn.py: latent 100, sigma
0.3, K = 20, step 0.1, Adam 3e-4 betas (0.5, 0.999), batch 100) with a
generator from 4x4 to 64x64 (four upsamplings). Variants as for SVHN
(``:gaussian``, ``:corrupt``); tasks ``--mode=generate|reconstruct|inpaint|recover``.
"""

from coopjax.config import latent_flow as base
from coopjax.config import variants


def get_config(variant: str = ''):
  """Returns the config; ``variant`` as in configs/latent_flow_svhn.py."""
  c = base.get_config()
  c.data.update(name='celeb_a', image_size=64, random_flip=True,
                num_test=10000)
  c.model.gen_num_up = 4
  c.train.steps = 100000
  return variants.apply(c, variant, base.VARIANTS, __file__, combine=True)
