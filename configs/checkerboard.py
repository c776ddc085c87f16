"""CDRL on the 2-D checkerboard: the quickstart, and the reference toy setting.

Quickstart (about 10 minutes on 2 CPU cores)::

    python -m coopjax.main --config=configs/checkerboard.py --workdir=runs/checkerboard

The CDRL authors' exact toy setting (batch 2500, lr 3e-6 / 1e-5, 100k steps)::

    python -m coopjax.main --config=configs/checkerboard.py:reference --workdir=runs/checkerboard_ref

The DRL baseline (no initializer, K = 30)::

    python -m coopjax.main --config=configs/checkerboard.py:drl --workdir=runs/checkerboard_drl

Other 2-D densities: ``--config.data.name=8gaussians`` (or ``2spirals``, ``rings``,
or ``array`` with ``--config.data.path=points.npy``).
"""

import ml_collections


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  """Returns the config; ``variant`` is '', 'reference' or 'drl'."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.algorithm = 'cdrl'

  c.data = ml_collections.ConfigDict()
  c.data.name = 'checkerboard'
  c.data.batch_size = 500
  c.data.num_points = 50000
  c.data.scale = 4.0
  c.data.path = ''

  # Cosine logSNR schedule; the 2-D script's step constant (s_t^2 = 2e-3 c_t
  # beta_t) with its constant c_t = 1 / sqrt(1 - abar_0).
  c.schedule = ml_collections.ConfigDict()
  c.schedule.kind = 'cosine'
  c.schedule.num_levels = 6
  c.schedule.logsnr_min = -5.1
  c.schedule.logsnr_max = 9.8
  c.schedule.step_const = 2e-3
  c.schedule.ct_mode = 'inv_sigma0'

  c.model = ml_collections.ConfigDict()
  c.model.ebm = 'mlp'
  c.model.width = 128
  c.model.mults = (1, 2, 2, 2)
  c.model.blocks_per_stage = 1
  c.model.temb_dim = 128
  c.model.use_sn = True
  c.model.initializer = 'mlp'
  c.model.init_width = 64
  c.model.init_blocks = 1
  c.model.langevin_steps = 15
  c.model.tweedie = False

  c.optim = ml_collections.ConfigDict()
  c.optim.ebm = ml_collections.ConfigDict(dict(
      lr=1e-4, b1=0.9, b2=0.999, weight_decay=0.0, warmup=200,
      warmup_offset=0, grad_clip=1.0))
  c.optim.init = ml_collections.ConfigDict(dict(
      lr=1e-3, b1=0.9, b2=0.999, weight_decay=0.0, warmup=200,
      warmup_offset=10, grad_clip=1.0))

  c.train = ml_collections.ConfigDict()
  c.train.steps = 3000
  c.train.log_every = 50
  c.train.ckpt_every = 500
  c.train.sample_every = 1000
  c.train.ema = 0.999
  c.train.keep_checkpoints = 3
  c.train.on_nonfinite = 'stop'

  c.sample = ml_collections.ConfigDict()
  c.sample.num = 10000
  c.sample.langevin_steps = 15
  c.sample.grid_k = 6

  c.eval = ml_collections.ConfigDict()
  c.eval.num_samples = 50000

  if variant == 'reference':
    c.data.batch_size = 2500
    c.optim.ebm.lr = 3e-6
    c.optim.init.lr = 1e-5
    c.optim.ebm.warmup = c.optim.init.warmup = 10000
    c.optim.init.warmup_offset = 500
    c.train.steps = 100000
    c.train.ema = 0.9999
    c.train.log_every = 100
    c.train.ckpt_every = 10000
    c.train.sample_every = 1000
    c.sample.num = 25000
  elif variant == 'drl':
    c.algorithm = 'drl'
    c.model.initializer = 'none'
    c.model.langevin_steps = 30
    c.sample.langevin_steps = 30
  elif variant:
    raise ValueError(f"Unknown variant {variant!r} of configs/checkerboard.py; "
                     f"expected '', 'reference' or 'drl'.")
  return c
