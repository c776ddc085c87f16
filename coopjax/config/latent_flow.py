"""The latent flow prior schema: every field it reads, with the SVHN reference settings.

    from coopjax.config import latent_flow as base

    def get_config(variant: str = ''):
      c = base.get_config()
      c.data.update(name='cifar10', random_flip=True)
      return variants.apply(c, variant, base.VARIANTS, __file__, combine=True)

:func:`get_config` is the generator with a flow prior on SVHN (docs/algorithms.md,
section 4). Variants combine, comma-separated: :func:`gaussian` (the
prior-only ablation), :func:`corrupt` (30% of the pixels missing),
:func:`anomaly` (digit 9 held out).
"""

from __future__ import annotations

import ml_collections

from coopjax.config import common


def model(**overrides) -> ml_collections.ConfigDict:
  """``config.model``: the prior, the generator and posterior Langevin."""
  return common.section(dict(
      latent_dim=100,          # dimension of z
      prior='flow',            # 'flow' or 'gaussian' (N(0, I), the ablation)
      flow_net='reference',    # flow prior: 'reference' (the authors' _netF) or 'dense' (small)
      flow_steps=5,            # flow prior: coupling steps
      flow_hidden=64,          # flow prior: coupling network width
      generator='reference',   # 'reference' (the authors' _netG) or 'small' (CPU demos)
      gen_ngf=64,              # reference: ngf, the first map has 8 ngf channels
      gen_base=4,              # reference: side of the first map
      gen_last_stride=2,       # reference: 2 (4x4 stride 2) or 1 (3x3, CIFAR-10)
      gen_width=64,            # small: channels before the last upsampling
      gen_num_up=3,            # small: upsamplings from 4x4 (3: 32x32)
      sigma=0.3,               # observation noise of x = g(z) + sigma eps
      langevin_steps=20,       # K, posterior Langevin steps
      step_size=0.1,           # posterior Langevin step size
  ), overrides, 'model')


def task(**overrides) -> ml_collections.ConfigDict:
  """``config.task``: the --mode tasks on a trained run (coopjax.latent_flow.tasks)."""
  return common.section(dict(
      num=100,                 # examples per task
      recon_steps=400,         # noise-free posterior steps of reconstruction tasks (20 K)
      chunk=100,               # examples per jitted call
      mask='square',           # inpaint: 'square', 'half' or 'free'
      temperatures=(1.0, 0.8),  # generate: prior temperatures
  ), overrides, 'task')


def epochs(c: ml_collections.ConfigDict, train_size: int, lr: float,
           num_epochs: int = 201) -> ml_collections.ConfigDict:
  """The authors' schedule: Adam ``lr`` on both networks, decayed by 0.998
  after every epoch of ``ceil(train_size / batch)`` updates, ``num_epochs``
  epochs."""
  per_epoch = -(-train_size // c.data.batch_size)
  for name in ('gen', 'prior'):
    c.optim[name].update(lr=lr, decay_rate=0.998, decay_steps=per_epoch)
  c.train.steps = num_epochs * per_epoch
  return c


def get_config() -> ml_collections.ConfigDict:
  """The latent flow prior on SVHN as the authors' (their README's command;
  departures: docs/algorithms.md, section 4)."""
  c = common.base('latent_flow')
  c.data = common.data(name='svhn_cropped', batch_size=100, random_flip=False)
  c.model = model()
  c.optim = ml_collections.ConfigDict()
  for name in ('gen', 'prior'):
    c.optim[name] = common.optimizer(lr=4e-4, b1=0.5)
  c.train = common.train(steps=70000, sample_every=5000, ema=0.0)
  epochs(c, train_size=73257, lr=4e-4)
  # Generation needs no Langevin: sample.langevin_steps is unused (0).
  c.sample = common.sample(chunk=100, langevin_steps=0)
  c.sample.temperature = 1.0  # prior temperature of the samples
  c.sample.tasks = ()         # tasks run with every sample report (e.g. 'reconstruct')
  c.eval = common.eval_()
  c.task = task()
  return c


def gaussian(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The prior-only ablation: ``N(0, I)`` prior, no flow."""
  c.model.prior = 'gaussian'
  return c


def corrupt(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Train on images missing 30% of their pixels (the mask in the likelihood)."""
  c.data.missing_fraction = 0.3
  return c


def anomaly(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Class 9 held out of training (then ``--mode=anomaly``)."""
  c.data.holdout_class = 9
  return c


# The --mode tasks of a trained run (coopjax.latent_flow.tasks).
TASKS = ('generate', 'reconstruct', 'anomaly', 'inpaint', 'recover')
TASKS_ON_POINTS = TASKS

# The variant tokens of the latent flow image configs (comma-separated).
VARIANTS = {'gaussian': gaussian, 'corrupt': corrupt}
