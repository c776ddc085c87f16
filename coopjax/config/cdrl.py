"""The CDRL / DRL schema: every field they read, with the CIFAR-10 paper settings.

    from coopjax.config import cdrl as base

    def get_config(variant: str = ''):
      c = base.get_config()
      c.data.update(name='svhn_cropped', random_flip=False)
      return variants.apply(c, variant, base.VARIANTS, __file__)

:func:`get_config` is CDRL on CIFAR-10 with the paper's training settings
(docs/algorithms.md, section 2); :func:`drl` turns a CDRL config into the DRL
baseline (every CDRL config's ``:drl``), :func:`large` widens the EBM.
"""

from __future__ import annotations

import ml_collections

from coopjax.config import common


def schedule(**overrides) -> ml_collections.ConfigDict:
  """``config.schedule``: the noise levels and Langevin step sizes."""
  # Cosine logSNR schedule, T = 6; s_t^2 = step_const c_t beta_t with
  # c_t = sigma_{t-1} / sigma_0 ('sigma').
  return common.section(dict(
      kind='cosine',           # 'cosine' (logSNR) or 'drl_linear' (DRL's 1000-step betas)
      num_levels=6,            # T noise levels
      logsnr_min=-5.1,         # cosine: logSNR at the noisiest level
      logsnr_max=9.8,          # cosine: logSNR at level 0
      step_const=4e-4,         # s_t^2 = step_const * c_t * beta_t
      ct_mode='sigma',         # c_t: 'sigma' (sigma_{t-1}/sigma_0), 'inv_sigma0' or 'one'
  ), overrides, 'schedule')


def model(**overrides) -> ml_collections.ConfigDict:
  """``config.model``: the EBM, the initializer and Langevin."""
  return common.section(dict(
      ebm='resnet',            # 'resnet' (images) or 'mlp' (2-D points)
      width=128,               # EBM base channels / hidden units
      mults=(1, 2, 2, 2),      # EBM width multiplier per resolution / stage
      blocks_per_res=8,        # resnet: residual blocks per resolution
      blocks_per_stage=1,      # mlp: residual blocks per stage
      temb_dim=128,            # noise-level embedding size
      temb_mult=4,             # mlp: the EBM's embedding MLP is temb_mult * temb_dim wide
      use_sn=True,             # spectral normalisation in the EBM
      arch='cdrl',             # resnet: 'cdrl' (CDRL authors' network) or 'drl' (DRL authors')
      attn=(),                 # resnet, arch 'drl': resolutions with self-attention
      num_classes=0,           # labels for conditioning (0: unconditional)
      label_drop=0.1,          # probability a label is dropped to null (guidance)
      dtype='float32',         # compute dtype of the networks
      initializer='unet',      # 'unet', 'mlp', or 'none' (DRL)
      init_width=64,           # initializer base channels / hidden units
      init_mults=(1, 1, 1),    # unet: width multiplier per resolution
      init_blocks=3,           # initializer residual blocks (per resolution)
      init_attn=(16, 8),       # unet: resolutions with self-attention
      init_dropout=0.1,        # unet: dropout
      langevin_steps=15,       # K, Langevin steps per level
      tweedie=True,            # final Tweedie denoising step of the samples
      final_denoise=False,     # samples: last Langevin step's noise removed (Tweedie on the chain)
      level_input='logsnr',    # networks' noise-level input: 'logsnr' (CDRL) or 'index' (DRL)
      pair_noise='shared',     # training pair noise: 'shared' (CDRL) or 'independent' (DRL)
      init_conditional=True,   # conditional models: initializer conditioned on the label too
      sample_noise=1.0,        # Langevin noise scale when sampling (DRL's FID samples: 0.99)
      clean_level_share=0.0,   # training: share of examples moved to level 1 (0: uniform levels)
  ), overrides, 'model')


def task(**overrides) -> ml_collections.ConfigDict:
  """``config.task``: the --mode tasks on a trained run (coopjax.cdrl.tasks)."""
  return common.section(dict(
      num=100,                              # examples per task
      guidance_weights=(0.0, 0.3, 0.7, 1.0),  # guided: classifier-free guidance weights
      concepts=(),                          # compose: (attribute, value) pairs
      compose_weight=1.0,                   # compose: weight w of each concept
      mask='square',                        # inpaint: 'square', 'half' or 'free'
      ood_data='svhn_cropped',              # ood: the other data set ('noise': uniform)
      steps=(15, 8, 5, 3),                  # fewer_steps: K' per level
  ), overrides, 'task')


def get_config() -> ml_collections.ConfigDict:
  """CDRL on CIFAR-10 with the paper's training settings (the networks
  depart from the authors': docs/algorithms.md, section 5.1)."""
  c = common.base('cdrl')
  c.data = common.data()
  c.schedule = schedule()
  c.model = model()
  c.optim = ml_collections.ConfigDict()
  c.optim.ebm = common.optimizer(lr=1e-4, warmup=10000, grad_clip=1.0)
  # AdamW with weight decay 0 (= Adam); warm-up offset by +500 steps.
  c.optim.init = common.optimizer(lr=1e-5, warmup=10000, warmup_offset=500,
                                  grad_clip=1.0)
  # A step whose |f(data) - f(samples)| exceeds 1e3 counts as bad (as a
  # non-finite one; train.on_nonfinite decides): healthy runs stay within
  # +-0.2 on the digits and +-0.01 in 2-D, and a diverging EBM can run its
  # energies to 1e20 with every value finite.
  c.train = common.train(metric_limits={'energy_gap': 1e3})
  c.sample = common.sample(chunk=100)
  c.sample.guidance = 0.0  # guidance weight of conditional samples
  c.eval = common.eval_()
  c.task = task()
  return c


def drl(c: ml_collections.ConfigDict,
        linear_schedule: bool = True) -> ml_collections.ConfigDict:
  """The DRL baseline as the authors' code (``ruiqigao/recovery_likelihood``).

  No initializer (the chain starts at ``x_t``), K = 30, the EBM conditioned
  on the integer level, the pair's two noisy versions drawn with independent
  noise, no Tweedie step, samples with Langevin noise scale 0.99 (the
  authors' FID setting), EBM warm-up 1000 updates without gradient
  clipping, EMA 0.999 (the optimiser's lr and betas are already theirs:
  Adam 1e-4, 0.9, 0.999); with ``linear_schedule`` DRL's linear schedule
  (1000 betas 1e-4..0.02 at steps 0, 100, .., 500, 999) and step constant
  2e-4 with ``c_t = sigma_{t-1} / sigma_0``. An image EBM is the DRL
  authors' network (``model.arch='drl'``, their ``net_res_temb2`` at their
  flag defaults: no attention) with its embedding as wide as its first stage
  (``temb_dim = width``, as theirs). Departures: docs/algorithms.md,
  section 5.1.
  """
  c.algorithm = 'drl'
  c.model.update(initializer='none', langevin_steps=30, tweedie=False,
                 level_input='index', pair_noise='independent',
                 sample_noise=0.99)
  if c.model.ebm == 'resnet':
    c.model.update(arch='drl', temb_dim=c.model.width)
  if linear_schedule:
    c.schedule.update(kind='drl_linear', step_const=2e-4, ct_mode='sigma')
  c.optim.ebm.update(warmup=1000, warmup_offset=0, grad_clip=0.0)
  c.train.ema = 0.999
  return c


def large(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """256 EBM base channels."""
  c.model.width = 256
  return c


def celeba64(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """CelebA at 64x64 with flips: five resolutions, batch 128."""
  c.data.update(name='celeb_a', image_size=64, random_flip=True,
                batch_size=128)
  c.model.update(mults=(1, 2, 2, 2, 2), init_mults=(1, 1, 2, 2),
                 init_attn=(16, 8))
  return c


# The --mode tasks of a trained CDRL / DRL run on images (coopjax.cdrl.tasks);
# 2-D runs have none.
TASKS = ('guided', 'compose', 'inpaint', 'ood', 'fewer_steps')
TASKS_ON_POINTS = ()

# The variants every CDRL image config accepts.
VARIANTS = {'': None, 'drl': drl}
