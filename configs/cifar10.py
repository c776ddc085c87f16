"""CDRL on CIFAR-10 with every default of the paper (ALGORITHMS.md section 1).

    python -m coopjax.main --config=configs/cifar10.py --workdir=runs/cifar10

Variants: ``:large`` (256 base channels), ``:drl`` (the DRL baseline: no
initializer, K = 30, linear schedule). The data must be prepared offline in
``--config.data.tfds_dir`` (see README, "Image data"). FID needs converted
Inception weights: ``--config.eval.inception_path=inception_fid.npz`` (see
docs/fid.md). Tasks on a trained run: ``--mode=fewer_steps``, ``--mode=ood``
(against ``task.ood_data``), ``--mode=inpaint``.

Shrink for a laptop with overrides, e.g. ``--config.model.width=32
--config.model.blocks_per_res=1 --config.data.batch_size=16``.
"""

import ml_collections


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  """Returns the config; ``variant`` is '', 'large' or 'drl'."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.algorithm = 'cdrl'

  c.data = ml_collections.ConfigDict(dict(
      name='cifar10', kind='images', batch_size=256, image_size=32,
      channels=3, random_flip=True, tfds_dir='', path='', num_test=10000,
      resize='pad', holdout_class=-1, attributes=()))

  # Cosine logSNR schedule, T = 6; s_t^2 = 4e-4 c_t beta_t with
  # c_t = sigma_{t-1} / sigma_0.
  c.schedule = ml_collections.ConfigDict(dict(
      kind='cosine', num_levels=6, logsnr_min=-5.1, logsnr_max=9.8,
      step_const=4e-4, ct_mode='sigma'))

  c.model = ml_collections.ConfigDict(dict(
      ebm='resnet', width=128, mults=(1, 2, 2, 2), blocks_per_res=8,
      temb_dim=128, use_sn=True, num_classes=0, label_drop=0.1,
      dtype='float32',
      initializer='unet', init_width=64, init_mults=(1, 1, 1), init_blocks=3,
      init_attn=(16, 8), init_dropout=0.1,
      langevin_steps=15, tweedie=True))

  c.optim = ml_collections.ConfigDict()
  c.optim.ebm = ml_collections.ConfigDict(dict(
      lr=1e-4, b1=0.9, b2=0.999, weight_decay=0.0, warmup=10000,
      warmup_offset=0, grad_clip=1.0))
  # AdamW with weight decay 0 (= Adam); warm-up offset by +500 steps.
  c.optim.init = ml_collections.ConfigDict(dict(
      lr=1e-5, b1=0.9, b2=0.999, weight_decay=0.0, warmup=10000,
      warmup_offset=500, grad_clip=1.0))

  c.train = ml_collections.ConfigDict(dict(
      steps=400000, log_every=100, ckpt_every=5000, sample_every=10000,
      ema=0.9999, keep_checkpoints=3, on_nonfinite='stop'))

  c.sample = ml_collections.ConfigDict(dict(
      num=100, langevin_steps=15, chunk=100, guidance=0.0))

  c.eval = ml_collections.ConfigDict(dict(
      num_samples=50000, inception_path='', cache_dir=''))

  c.task = ml_collections.ConfigDict(dict(
      num=100, guidance_weights=(0.0, 0.3, 0.7, 1.0), concepts=(),
      compose_weight=1.0, mask='square', ood_data='svhn_cropped',
      steps=(15, 8, 5, 3)))

  if variant == 'large':
    c.model.width = 256
  elif variant == 'drl':
    c.algorithm = 'drl'
    c.model.initializer = 'none'
    c.model.langevin_steps = c.sample.langevin_steps = 30
    c.schedule.update(kind='drl_linear', step_const=2e-4)
  elif variant:
    raise ValueError(f"Unknown variant {variant!r} of configs/cifar10.py; "
                     "expected '', 'large' or 'drl'.")
  return c
