"""Latent flow prior + top-down generator on CIFAR-10 (32x32).

    python -m coopjax.main --config=configs/latent_flow_cifar10.py --workdir=runs/lf_cifar10

The SVHN settings (configs/latent_flow_svhn.py) with K = 40
posterior steps, latent dimension 128, Adam 4e-4 (betas (0.5, 0.999)), batch
100, random flips. Variants as for SVHN (``:gaussian``, ``:corrupt``); tasks
``--mode=generate|reconstruct|inpaint|recover``, and ``--mode=anomaly`` with
``--config.data.holdout_class``.
"""

from coopjax.config import latent_flow as base
from coopjax.config import variants


def get_config(variant: str = ''):
  """Returns the config; ``variant`` as in configs/latent_flow_svhn.py."""
  c = base.get_config()
  c.data.update(name='cifar10', random_flip=True)
  c.model.update(latent_dim=128, langevin_steps=40)
  c.optim.gen.lr = c.optim.prior.lr = 4e-4
  c.train.steps = 100000
  return variants.apply(c, variant, base.VARIANTS, __file__, combine=True)
