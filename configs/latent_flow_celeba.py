"""Latent flow prior + top-down generator on CelebA (64x64).

    python -m coopjax.main --config=configs/latent_flow_celeba.py --workdir=runs/lf_celeba

The authors' CelebA command (``celeba_crop``): the SVHN settings
(configs/latent_flow_svhn.py: latent 100, sigma 0.3, K = 20, step 0.1,
batch 100) with the generator at ngf 128 from 4x4 to 64x64 (1024 -> 512 ->
256 -> 128 -> 3), Adam 3e-4 decayed by 0.998 per epoch, no flips. The
authors crop rows 45..173 and columns 25..153 before resizing; the data
loader here centre-crops (docs/algorithms.md, section 4). Variants as for SVHN
(``:gaussian``, ``:corrupt``); tasks ``--mode=generate|reconstruct|inpaint|recover``.
"""

from coopjax.config import latent_flow as base
from coopjax.config import variants


def get_config(variant: str = ''):
  """Returns the config; ``variant`` as in configs/latent_flow_svhn.py."""
  c = base.get_config()
  c.data.update(name='celeb_a', image_size=64, random_flip=False,
                num_test=10000)
  c.model.update(gen_ngf=128, gen_num_up=4)
  base.epochs(c, train_size=162770, lr=3e-4)
  return variants.apply(c, variant, base.VARIANTS, __file__, combine=True)
