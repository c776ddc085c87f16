"""CoopFlow on CIFAR-10 with the reference defaults (ALGORITHMS.md section 2).

    python -m coopjax.main --config=configs/coopflow_cifar10.py --workdir=runs/cf_cifar10

CoopFlow(pre): pretrain the flow by maximum likelihood on the (dequantised)
data, then learn cooperatively from it, the flow frozen for
``optim.flow.freeze_steps`` updates::

    python -m coopjax.main --config=configs/coopflow_cifar10.py:pretrain --workdir=runs/cf_cifar10_flow
    python -m coopjax.main --config=configs/coopflow_cifar10.py:pre --workdir=runs/cf_cifar10_pre \\
        --config.coopflow.flow_init=runs/cf_cifar10_flow

Tasks on a trained run: ``--mode=sample`` (synthesis), ``--mode=reconstruct``,
``--mode=interpolate``, ``--mode=inpaint``. The data must be prepared offline
in ``--config.data.tfds_dir`` (see README, "Image data"); FID needs
``--config.eval.inception_path``. Shrink for a laptop with e.g.
``--config.model.width=32 --config.model.flow_hidden=32
--config.data.batch_size=16``.
"""

import ml_collections


def coopflow_section() -> ml_collections.ConfigDict:
  """``config.coopflow``: from scratch, no pretraining (shared by the
  CoopFlow configs)."""
  return ml_collections.ConfigDict(dict(pretrain_flow=False, pretrain_steps=0,
                                        flow_init=''))


def optim_section(ebm_lr: float, flow_lr: float, ebm_warmup: int,
                  flow_warmup: int) -> ml_collections.ConfigDict:
  """``config.optim`` for CoopFlow: Adam with betas (0.5, 0.5) for the EBM,
  (0.9, 0.999) and gradient-norm clip 1.0 for the flow (shared by the
  CoopFlow configs)."""
  optim = ml_collections.ConfigDict()
  optim.ebm = ml_collections.ConfigDict(dict(
      lr=ebm_lr, b1=0.5, b2=0.5, weight_decay=0.0, warmup=ebm_warmup,
      warmup_offset=0, grad_clip=0.0))
  optim.flow = ml_collections.ConfigDict(dict(
      lr=flow_lr, b1=0.9, b2=0.999, weight_decay=0.0, warmup=flow_warmup,
      warmup_offset=0, grad_clip=1.0, freeze_steps=0, lr_after=0.0,
      lr_after_step=0))
  return optim


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  """Returns the config; ``variant`` is '', 'pretrain' or 'pre'."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.algorithm = 'coopflow'

  c.data = ml_collections.ConfigDict(dict(
      name='cifar10', kind='images', batch_size=128, image_size=32,
      channels=3, random_flip=True, tfds_dir='', path='', num_test=10000,
      resize='pad', holdout_class=-1, attributes=()))

  # EBM: conv net, 128 channels, swish residual blocks with average pooling,
  # no spectral norm. Flow: multi-scale Glow with the logit transform.
  # Langevin: K = 30, step 0.03, no noise, drift clipped to +-0.1, x to [-1, 1].
  c.model = ml_collections.ConfigDict(dict(
      ebm='convnet', width=128, mults=(1, 2, 2, 2), blocks_per_res=1,
      flow='glow', flow_scales=3, flow_steps=8, flow_hidden=128,
      logit_alpha=0.05, dequant_bins=256,
      langevin_steps=30, step_size=0.03, noise_scale=0.0, clip_drift=0.1,
      clip_x=(-1.0, 1.0), energy_l2=0.0, dequant_revised=True))

  c.coopflow = coopflow_section()
  # ALGORITHMS.md gives the learning rates and the EBM's betas; the warm-up
  # (200 updates, both networks) and the flow's gradient-norm clip (1.0) are
  # those of the authors' main_cifar.py.
  c.optim = optim_section(ebm_lr=1e-4, flow_lr=1e-4, ebm_warmup=200,
                          flow_warmup=200)

  c.train = ml_collections.ConfigDict(dict(
      steps=100000, log_every=100, ckpt_every=5000, sample_every=5000,
      ema=0.0, keep_checkpoints=3, on_nonfinite='stop'))

  c.sample = ml_collections.ConfigDict(dict(num=100, langevin_steps=None,
                                            chunk=100))
  c.eval = ml_collections.ConfigDict(dict(
      num_samples=50000, inception_path='', cache_dir=''))
  c.task = ml_collections.ConfigDict(dict(
      num=64, recon_iters=200, recon_lr=0.05, interp_points=10,
      mask='square'))

  if variant == 'pretrain':
    c.coopflow.pretrain_flow = True
  elif variant == 'pre':
    c.optim.flow.freeze_steps = 10000
  elif variant:
    raise ValueError(f"Unknown variant {variant!r} of "
                     f"configs/coopflow_cifar10.py; expected '', 'pretrain' "
                     f"or 'pre'.")
  return c
