"""The CoopFlow schema: every field it reads, with the CIFAR-10 reference settings.

    from coopjax.config import coopflow as base

    def get_config(variant: str = ''):
      c = base.get_config()
      c.data.update(name='svhn_cropped', random_flip=False)
      return variants.apply(c, variant, base.VARIANTS, __file__)

:func:`get_config` is CoopFlow on CIFAR-10 (docs/algorithms.md, section 3).
CoopFlow(pre) in two runs: :func:`pretrain` (the flow alone, by maximum
likelihood), then :func:`pre` (cooperative learning from the pretrained flow
given by ``--config.coopflow.flow_init``, frozen for
``optim.flow.freeze_steps`` updates).
"""

from __future__ import annotations

import ml_collections

from coopjax.config import common


def model(**overrides) -> ml_collections.ConfigDict:
  """``config.model``: the EBM, the flow and the Langevin revision."""
  # EBM: the authors' EBM_res (128 -> 256 -> 512 -> 1024 channels, swish
  # blocks with average pooling, a 4x4 head to 100 outputs summed; PyTorch's
  # initialisation). Flow: the authors' Flow++ (96 channels, 10 blocks per
  # coupling, self-attention, 32 logistic components, variational
  # dequantisation, dropout 0.2; their sampler's 2 sigmoid - 1).
  # Langevin: K = 30, step 0.03 (0.04 for samples), no noise, drift clipped
  # to +-0.1, x to [-1, 1].
  return common.section(dict(
      ebm='ebm_res',           # 'ebm_res' (the authors'), 'convnet' (small images) or 'mlp' (2-D points)
      width=128,               # EBM base channels / hidden units
      mults=(2, 4, 8),         # EBM width multiplier per block / resolution / stage
      blocks_per_res=1,        # convnet: residual blocks per resolution
      blocks_per_stage=1,      # mlp: residual blocks per stage
      temb_dim=16,             # mlp: embedding size of its (constant) level input
      use_sn=False,            # mlp: spectral normalisation
      num_classes=0,           # resnet EBM only: labels (CoopFlow is unconditional)
      dtype='float32',         # resnet EBM only: compute dtype
      flow='flowpp',           # 'flowpp' (the authors'), 'glow' (lighter, images) or 'dense' (vectors)
      flow_scales=3,           # glow: scales
      flow_steps=8,            # flow steps (per scale for glow)
      flow_hidden=96,          # flow coupling network width (Flow++: mid channels)
      flowpp_scales=((0, 4), (2, 3)),  # flowpp: (channel-wise, checkerboard) couplings per scale
      flowpp_blocks=10,        # flowpp: blocks per coupling network
      flowpp_components=32,    # flowpp: logistic mixture components
      flowpp_dequant_blocks=2,  # flowpp: blocks of the dequantiser's couplings (0: uniform)
      flowpp_attn=True,        # flowpp: self-attention in the couplings
      flowpp_dropout=0.2,      # flowpp: dropout in training
      reference_sampler=True,  # flowpp: proposals 2 sigmoid(y) - 1 as the authors' sampler
      logit_alpha=0.05,        # glow: logit-transform margin (0: none)
      dequant_bins=0,          # grey levels for dequantisation outside the flow (0: none; Flow++ dequantises itself)
      langevin_steps=30,       # K, Langevin revision steps
      step_size=0.03,          # Langevin step size in training
      sample_step_size=0.04,   # Langevin step size of samples (0: step_size)
      noise_scale=0.0,         # Langevin noise factor (0: none, as in the reference)
      clip_drift=0.1,          # clip of each step's drift (0: none)
      clip_x=(-1.0, 1.0),      # (low, high) box x is clipped to (): none
      energy_l2=0.0,           # penalty on the energies' squares (0: none)
      dequant_revised=True,    # dequantise the revised samples the flow learns from
  ), overrides, 'model')


def coopflow(**overrides) -> ml_collections.ConfigDict:
  """``config.coopflow``: from scratch, no pretraining."""
  return common.section(dict(
      pretrain_flow=False,     # train only the flow, by maximum likelihood on the data
      pretrain_steps=0,        # CoopFlow(pre) in one run: first updates train only the flow
      flow_init='',            # workdir whose latest checkpoint's flow starts this run
  ), overrides, 'coopflow')


def optim(ebm_lr: float, flow_lr: float, ebm_warmup: int,
          flow_warmup: int, flow_l2: float = 0.0) -> ml_collections.ConfigDict:
  """``config.optim``: Adam with betas (0.5, 0.5) for the EBM, (0.9, 0.999)
  and gradient-norm clip 1.0 for the flow, with ``flow_l2`` (PyTorch Adam's
  weight decay) on the flow's weight-norm scales."""
  o = ml_collections.ConfigDict()
  o.ebm = common.optimizer(lr=ebm_lr, b1=0.5, b2=0.5, warmup=ebm_warmup)
  o.flow = common.optimizer(lr=flow_lr, warmup=flow_warmup, grad_clip=1.0,
                            l2=flow_l2, l2_names=('g', 'rescale_g'))
  return o


def task(**overrides) -> ml_collections.ConfigDict:
  """``config.task``: the --mode tasks on a trained run (coopjax.coopflow.tasks)."""
  return common.section(dict(
      num=64,                  # examples per task
      recon_space='x0',        # 'x0': descent on the chain's start (the authors'); 'latent': Adam on z
      recon_iters=200,         # reconstruct / inpaint: gradient steps
      recon_lr=0.05,           # reconstruct: their learning rate
      recon_decay=1.0,         # x0: learning rate times recon_decay ** j
      inpaint_lr=0.03,         # x0 inpainting: learning rate
      inpaint_decay=0.99,      # x0 inpainting: times inpaint_decay ** j
      interp_points=21,        # interpolate: points per pair (the authors')
      interp_from='reconstruction',  # ends: latents of the reconstructions (the authors') or of the 'images'
      mask='square',           # inpaint: 'square', 'half' or 'free'
  ), overrides, 'task')


# CIFAR-10 updates per epoch at the authors' batch of 28.
EPOCH = -(-50000 // 28)


def get_config() -> ml_collections.ConfigDict:
  """CoopFlow on CIFAR-10 with the authors' networks and settings (their
  README's command; departures: docs/algorithms.md, section 3)."""
  c = common.base('coopflow')
  c.data = common.data(batch_size=28)
  c.model = model()
  c.coopflow = coopflow()
  # The authors give the learning rates and the EBM's betas; the warm-up
  # (200 updates, both networks), the flow's gradient-norm clip (1.0) and its
  # weight decay (5e-5 on the weight-norm scales) are those of the authors'
  # main_cifar.py; 200 epochs.
  c.optim = optim(ebm_lr=1e-4, flow_lr=1e-4, ebm_warmup=200, flow_warmup=200,
                  flow_l2=5e-5)
  c.train = common.train(steps=200 * EPOCH, sample_every=5 * EPOCH, ema=0.0)
  c.sample = common.sample(chunk=100)
  c.eval = common.eval_()
  c.task = task()
  return c


def pretrain(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """CoopFlow(pre), first run: the flow alone, by maximum likelihood."""
  c.coopflow.pretrain_flow = True
  return c


def pre(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """CoopFlow(pre), second run: from ``coopflow.flow_init``, the flow frozen
  (no optimiser steps) for the authors' first 26 epochs (``epoch > 25``)."""
  c.optim.flow.freeze_steps = 26 * EPOCH
  return c


# The --mode tasks of a trained CoopFlow run on images (coopjax.coopflow.tasks);
# 2-D runs have none.
TASKS = ('reconstruct', 'interpolate', 'inpaint')
TASKS_ON_POINTS = ()

# The variants of the CoopFlow image configs.
VARIANTS = {'': None, 'pretrain': pretrain, 'pre': pre}
