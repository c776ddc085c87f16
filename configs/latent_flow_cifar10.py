"""Latent flow prior + top-down generator on CIFAR-10 (32x32).

    python -m coopjax.main --config=configs/latent_flow_cifar10.py --workdir=runs/lf_cifar10

The authors' CIFAR-10 command: the SVHN settings (configs/latent_flow_svhn.py)
with K = 40 posterior steps, latent dimension 128, the generator with ngf 128
from 8x8 (1024 -> 512 -> 256 -> 3, the last layer a stride-1 3x3 transposed
conv; 18.9M parameters), Adam 3.8e-4 decayed by 0.998 per epoch, batch 100,
no flips; reconstruction with 800 noise-free steps. Variants as for SVHN (``:gaussian``, ``:corrupt``); tasks
``--mode=generate|reconstruct|inpaint|recover``, and ``--mode=anomaly`` with
``--config.data.holdout_class``.
"""

from coopjax.config import latent_flow as base
from coopjax.config import variants


def get_config(variant: str = ''):
  """Returns the config; ``variant`` as in configs/latent_flow_svhn.py."""
  c = base.get_config()
  c.data.update(name='cifar10', random_flip=False)
  c.model.update(latent_dim=128, langevin_steps=40, gen_ngf=128, gen_base=8,
                 gen_last_stride=1)
  base.epochs(c, train_size=50000, lr=3.8e-4)
  c.task.recon_steps = 800
  return variants.apply(c, variant, base.VARIANTS, __file__, combine=True)
