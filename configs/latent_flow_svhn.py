"""Latent flow prior + top-down generator on SVHN (32x32), the reference
defaults of ALGORITHMS.md section 3.

    python -m coopjax.main --config=configs/latent_flow_svhn.py --workdir=runs/lf_svhn

Latent dimension 100, flow prior of 5 steps (width 64), DCGAN-style generator
(64 channels before the last upsampling, 4x4 -> 32x32), sigma 0.3, K = 20
posterior Langevin steps of size 0.1, Adam 3e-4 with betas (0.5, 0.999),
batch 100, no EMA. The data must be prepared offline in
``--config.data.tfds_dir`` (see README, "Image data").

Variants (comma-separated, e.g. ``:gaussian,corrupt``): ``gaussian`` (the
prior-only ablation: ``N(0, I)`` prior, no flow), ``corrupt`` (train on
images missing 30% of their pixels, the mask in the likelihood).
Tasks on a trained run: ``--mode=generate``, ``--mode=reconstruct``,
``--mode=inpaint``, ``--mode=recover`` (``corrupt`` runs), ``--mode=anomaly``
(with ``--config.data.holdout_class``).
"""

import ml_collections

VARIANTS = ('gaussian', 'corrupt')


def apply_variants(c: ml_collections.ConfigDict, variant: str, known,
                   file: str) -> None:
  """Applies the comma-separated ``variant`` tokens shared by the configs."""
  for token in filter(None, variant.split(',')):
    if token not in known:
      raise ValueError(f'Unknown variant {token!r} of configs/{file}; '
                       f'expected comma-separated tokens of {tuple(known)}.')
    if token == 'gaussian':
      c.model.prior = 'gaussian'
    elif token == 'corrupt':
      c.data.missing_fraction = 0.3
    elif token == 'anomaly':
      c.data.holdout_class = 9


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  """Returns the config; ``variant``: comma-separated tokens of ``VARIANTS``."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.algorithm = 'latent_flow'
  c.data = ml_collections.ConfigDict(dict(
      name='svhn_cropped', kind='images', batch_size=100, image_size=32,
      channels=3, random_flip=False, tfds_dir='', path='', num_test=10000,
      resize='pad', holdout_class=-1, attributes=(), missing_fraction=0.0))
  c.model = ml_collections.ConfigDict(dict(
      latent_dim=100, prior='flow', flow_steps=5, flow_hidden=64,
      gen_width=64, gen_num_up=3, sigma=0.3, langevin_steps=20,
      step_size=0.1))
  c.optim = ml_collections.ConfigDict()
  for name in ('gen', 'prior'):
    c.optim[name] = ml_collections.ConfigDict(dict(
        lr=3e-4, b1=0.5, b2=0.999, weight_decay=0.0, warmup=0,
        warmup_offset=0, grad_clip=0.0))
  c.train = ml_collections.ConfigDict(dict(
      steps=70000, log_every=100, ckpt_every=5000, sample_every=5000,
      ema=0.0, keep_checkpoints=3, on_nonfinite='stop'))
  c.sample = ml_collections.ConfigDict(dict(
      num=100, langevin_steps=0, chunk=100, temperature=1.0, tasks=()))
  c.eval = ml_collections.ConfigDict(dict(
      num_samples=50000, inception_path='', cache_dir=''))
  c.task = ml_collections.ConfigDict(dict(
      num=100, recon_steps=200, chunk=100, mask='square',
      temperatures=(1.0, 0.8)))
  apply_variants(c, variant, VARIANTS, 'latent_flow_svhn.py')
  return c
