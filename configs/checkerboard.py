"""CDRL on the 2-D checkerboard: the quickstart, and the reference toy setting.

Quickstart (about 10 minutes on a 2-core CPU)::

    python -m coopjax.main --config=configs/checkerboard.py --workdir=runs/checkerboard --cpu_devices=2

Measured (2026-11-29/30): 12000 updates, sample TV 0.082 with 50k samples for
two seeds (``--mode=eval``; the 50k floor is 0.039). From a fresh clone on a
2-core CPU with ``--cpu_devices=2`` (two data-parallel CPU devices): 10 min
29 s, TV 0.084; with one device the same kind of machine took 13 min 23 s
(16.6 updates/s, TV 0.084), and a faster one about 9 minutes (23.6-24.6
updates/s).

The CDRL authors' exact toy setting (6 noise levels, EBM width 128, batch 2500, lr 3e-6 / 1e-5, 100k steps)::

    python -m coopjax.main --config=configs/checkerboard.py:reference --workdir=runs/checkerboard_ref

The DRL baseline (no initializer, K = 30)::

    python -m coopjax.main --config=configs/checkerboard.py:drl --workdir=runs/checkerboard_drl

Other 2-D densities: ``--config.data.name=8gaussians`` (or ``2spirals``, ``rings``,
or ``array`` with ``--config.data.path=points.npy``), learned with these
defaults; their figures are in the README, "2-D densities".
"""

from coopjax.config import cdrl as base
from coopjax.config import variants


def reference(c):
  """The CDRL authors' toy setting: width 128, batch 2500, lr 3e-6 / 1e-5,
  100k steps."""
  c.schedule.num_levels = 6  # their n_interval
  c.model.langevin_steps = 15
  c.sample.langevin_steps = None  # as training
  c.model.width = 128
  c.data.batch_size = 2500
  c.optim.ebm.lr = 3e-6
  c.optim.init.lr = 1e-5
  c.optim.ebm.warmup = c.optim.init.warmup = 10000
  c.optim.ebm.decay_rate = c.optim.init.decay_rate = 1.0  # constant rates
  c.optim.ebm.decay_steps = c.optim.init.decay_steps = 0
  c.optim.init.warmup_offset = 500
  c.train.update(steps=100000, ema=0.9999, log_every=100, ckpt_every=10000,
                 sample_every=1000)
  c.sample.num = 25000
  return c


def drl(c):
  """The DRL baseline (the DRL authors' settings, their 6 levels) on the
  cosine schedule and step constant of the 2-D setting."""
  c.schedule.num_levels = 6
  c.sample.langevin_steps = None  # as training
  return base.drl(c, linear_schedule=False)


def get_config(variant: str = ''):
  """Returns the config; ``variant`` is '', 'reference' or 'drl'."""
  c = base.get_config()
  c.data.update(name='checkerboard', kind='points', batch_size=500, num_points=50000,
                scale=4.0, path='')
  # Cosine logSNR schedule; the 2-D script's step constant (s_t^2 = 2e-3 c_t
  # beta_t) with its constant c_t = 1 / sqrt(1 - abar_0).
  # 8 noise levels rather than the images' 6: two spirals and rings are
  # learned (TV with 10k samples after 5000 updates, tuning runs on one
  # core: 0.571 -> 0.131 and 0.454 -> 0.170) for a slightly worse
  # checkerboard (50k: 0.123 -> 0.137; bench/RESULTS.md).
  c.schedule.update(step_const=2e-3, ct_mode='inv_sigma0', num_levels=8)
  # Width 64 rather than the reference's 128: a third of the time per update
  # (measured: 4.4 against 1.7 updates/s on one shared core), which buys more
  # updates in the quickstart's 10 minutes; EBM lr 3e-4 rather than 1e-4
  # (TV with 10k samples after 1500 updates: 0.211 against 0.232).
  # No final_denoise: it sharpens the checkerboard's edges (TV 0.089 ->
  # 0.076) but narrows the two spirals' arms (0.065 -> 0.166;
  # bench/RESULTS.md).
  # Spectral norm stays: without it the checkerboard improved (TV 0.084
  # against 0.089, 10000 updates) but rings diverged after 6000 updates.
  c.model.update(ebm='mlp', width=64, mults=(1, 2, 2, 2), blocks_per_stage=1,
                 temb_dim=128, use_sn=True, initializer='mlp', init_width=64,
                 init_blocks=1, langevin_steps=10, tweedie=False,
                 final_denoise=False)
  # The learning rates halve every 3000 updates (3e-4 -> 1.9e-5 for the
  # EBM): with spectral norm, 10000 updates, TV 0.089 against 0.102 at a
  # constant rate (halving every 1500: 0.097; every 3333: 0.091), 12000
  # updates 0.082 (two seeds), and a sharper energy (density TV 0.16-0.18
  # against 0.52).
  c.optim.ebm.update(lr=3e-4, warmup=200, warmup_offset=0, grad_clip=1.0,
                     decay_rate=0.5, decay_steps=3000)
  c.optim.init.update(lr=1e-3, warmup=200, warmup_offset=10, grad_clip=1.0,
                      decay_rate=0.5, decay_steps=3000)
  # More updates were the one change that moved the checkerboard (TV with
  # 50k samples: 0.133 after 5000 updates of K = 15, 0.118 after 8000, 0.107
  # after 11000 of K = 10 training chains; bench/RESULTS.md): K = 10 when
  # training buys the updates, the samples keep K = 15.
  c.train.update(steps=12000, log_every=50, ckpt_every=1000,
                 sample_every=6000, ema=0.999)
  # A run whose chains blow up stops (train.on_nonfinite) with its last good
  # checkpoint instead of training on. In 42 2-D tuning runs
  # (bench/RESULTS.md, fourteenth session) the 33 that learned their density
  # (TV under 0.1) kept chain_grad_norm at 8.4 or below; the 5 that
  # collapsed (TV 0.42-0.96) passed 30 (peaks 71-1244) 350-4450 updates
  # before their end, with |energy_gap| at most 550, under the CDRL bound.
  c.train.metric_limits.chain_grad_norm = 30.0
  c.sample.update(num=10000, chunk=10000, grid_k=6, langevin_steps=15)
  c.eval.num_samples = 50000
  return variants.apply(c, variant, {'': None, 'reference': reference,
                                     'drl': drl}, __file__)
