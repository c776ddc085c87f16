"""Config sections every algorithm shares: seed, data, train, sample, eval, optimisers.

Each function returns a fresh ``ml_collections.ConfigDict`` holding every
field the library reads in that section, with its default and what it means;
keyword arguments replace defaults (an unknown keyword is refused, so a typo
cannot add a field nobody reads). The algorithm schemas
(:mod:`coopjax.config.cdrl`, :mod:`~coopjax.config.coopflow`,
:mod:`~coopjax.config.latent_flow`) assemble them into full configs.
"""

from __future__ import annotations

from typing import Any

import ml_collections


def section(defaults: dict, overrides: dict, name: str) -> ml_collections.ConfigDict:
  """``defaults`` updated with ``overrides`` (whose keys must be declared)."""
  unknown = sorted(set(overrides) - set(defaults))
  if unknown:
    raise TypeError(f'config.{name} has no field(s) {unknown}; declared: '
                    f'{sorted(defaults)}.')
  return ml_collections.ConfigDict({**defaults, **overrides})


def optional_int(value=None) -> ml_collections.FieldReference:
  """An int field whose default is None (None alone cannot be overridden on
  the command line: ``--config.sample.langevin_steps=5`` needs the type)."""
  return ml_collections.FieldReference(value, field_type=int)


def data(**overrides: Any) -> ml_collections.ConfigDict:
  """``config.data``: which data set, how it is read and batched."""
  return section(dict(
      name='cifar10',          # data set: a tfds name, 'digits', 'array', or a 2-D density
      kind='images',           # 'images' or 'points'; decides only for name='array'
      batch_size=256,          # global batch (all devices together)
      image_size=32,           # images are padded / resized to this side
      channels=3,              # image channels (documentation; the data decide)
      random_flip=True,        # random horizontal flips of training images
      tfds_dir='',             # directory of the prepared tfds data ('' = tfds default)
      path='',                 # user file for name='array' (.npy / .npz)
      num_test=10000,          # test examples read (tfds)
      resize='pad',            # 'pad' or 'resize' when image_size differs from the data
      holdout_class=-1,        # class left out of training (anomaly detection); -1 none
      attributes=(),           # celeb_a attributes that become labels (2 per attribute)
      missing_fraction=0.0,    # fraction of each training image's pixels made missing
      num_points=50000,        # 2-D densities: points drawn
      scale=4.0,               # 2-D densities: spatial scale
      box=0.0,                 # 2-D: half-width of the evaluation box (0 = the density's own)
      bins=0,                  # 2-D: histogram bins per side for TV (0 = the density's own)
      split='train',           # tfds: the training split
      test_split='',           # tfds: the held-out split ('' = the data set's test split)
  ), overrides, 'data')


def complete_data(cfg) -> ml_collections.ConfigDict:
  """A ``config.data`` section (a ConfigDict or dict, possibly partial) with
  every undeclared field refused and every missing one at its default: what
  the data loaders read."""
  return data(**dict(cfg.items()))


def train(**overrides: Any) -> ml_collections.ConfigDict:
  """``config.train``: length of the run, logging, checkpoints, EMA."""
  return section(dict(
      steps=400000,            # optimiser updates
      log_every=100,           # updates between metric lines
      ckpt_every=5000,         # updates between checkpoints
      sample_every=10000,      # updates between sample reports
      ema=0.9999,              # EMA decay of the parameters (0: EMA = params)
      keep_checkpoints=3,      # checkpoints kept on disk
      on_nonfinite='stop',     # a bad step (non-finite, or beyond metric_limits): 'stop', 'skip' or 'rollback'
      metric_limits={},        # {metric: bound}: |metric| above it is a bad step (a finite divergence)
      best_metric='',          # keep the best checkpoint by this metric ('' = off), e.g. 'fid'
      best_mode='min',         # best_metric: 'min' (lower is better) or 'max'
      stop_check_every=10,     # several processes: updates between their agreements on a stop signal
  ), overrides, 'train')


def sample(**overrides: Any) -> ml_collections.ConfigDict:
  """``config.sample``: the sample reports (training, --mode=sample|eval)."""
  return section(dict(
      num=100,                          # samples per report
      langevin_steps=optional_int(),    # Langevin steps when sampling; None: the model's K
      chunk=10000,                      # samples drawn per jitted call
      grid_k=6,                         # 2-D data: density grid refinement
  ), overrides, 'sample')


def eval_(**overrides: Any) -> ml_collections.ConfigDict:
  """``config.eval``: --mode=eval and the quality figures of reports."""
  return section(dict(
      num_samples=50000,       # samples drawn by --mode=eval
      inception_path='',       # converted Inception weights for FID/IS ('' = no FID)
      cache_dir='',            # data statistics cache ('' = <workdir>/cache)
      fid_clamp=True,          # clamp samples to [-1, 1] before Inception (CDRL authors)
      fid_quantize='none',     # samples to uint8 first: 'none', 'round' or 'floor' (DRL authors)
      fid_reference='train',   # real statistics from the 'train' or 'test' split
      fid_num_real=50000,      # at most this many real images for the statistics
      checkpoint='latest',     # sample/eval/tasks use the 'latest' or the 'best' checkpoint (train.best_metric)
  ), overrides, 'eval')


def optimizer(**overrides: Any) -> ml_collections.ConfigDict:
  """``config.optim.<network>``: Adam(W), read by
  :func:`coopjax.trainer.state.make_optimizer`."""
  return section(dict(
      lr=1e-4,                 # learning rate
      b1=0.9,                  # Adam beta1
      b2=0.999,                # Adam beta2
      weight_decay=0.0,        # AdamW weight decay (0: Adam)
      warmup=0,                # linear warm-up updates (0: none)
      warmup_offset=0,         # warm-up factor min(1, (step + offset) / warmup)
      grad_clip=0.0,           # global gradient-norm clip (0: none)
      freeze_steps=0,          # first updates skipped (no Adam step; the warm-up counts them)
      l2=0.0,                  # coupled L2 (PyTorch Adam weight_decay) on the params in l2_names
      l2_names=(),             # leaf names of the params l2 applies to
      lr_after=0.0,            # learning rate from lr_after_step on (0: keep lr)
      lr_after_step=0,         # update at which lr_after takes over
      freeze_from=0,           # updates from this one on leave the params unchanged (learning rate 0; 0: never)
      decay_rate=1.0,          # lr times decay_rate ** floor(step / decay_steps) (1: none)
      decay_steps=0,           # updates per decay (e.g. one epoch; 0: none)
  ), overrides, 'optim')


def base(algorithm: str) -> ml_collections.ConfigDict:
  """The top level: ``seed`` and ``algorithm``."""
  c = ml_collections.ConfigDict()
  c.seed = 0                   # seeds the data order, initialisation and sampling
  c.algorithm = algorithm      # a key of coopjax.registry.ALGORITHMS
  return c


def digits(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The 8x8 scikit-learn digits (grey, no flips, 297 held out) in ``c.data``."""
  c.data.update(name='digits', image_size=8, channels=1, random_flip=False,
                num_test=297)
  return c
