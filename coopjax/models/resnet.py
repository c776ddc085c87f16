"""The CDRL image EBM: a spectrally normalised ResNet ``f_theta(x, logsnr[, c])``.

The authors' EBM (``models/ebm.py``, ``models/ebm_cond.py`` of
``AlvinZhuyx/CDRL``; docs/algorithms.md, section 2.10): conv 3x3 to
``width`` channels; one stage per entry of ``mults`` with ``blocks_per_res``
residual blocks of ``width * mult`` channels, 2x2 average pooling between
stages; block = lrelu, conv3x3, + lrelu(Dense(lrelu(temb))), lrelu, conv3x3
times a learnable per-channel scale, + shortcut (3x3 conv where the channels
change); head: ReLU, sum over space, dot with a plain bias-free projection
of lrelu(temb). Spectral norm on every conv and dense layer but the head.

Like :class:`coopjax.models.mlp.MLPEnergy` the forward pass is split so that
samplers compute the noise-level part once per level:

* ``time_features(logsnr, update_stats, label)`` -> ``{'blocks': (...),
  'head': ...}``, every leaf ``[N, channels]``;
* ``energy(x, features, update_stats)`` -> ``[B]`` float32.
"""

from typing import Any, Dict, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from coopjax.models.embedding import logsnr_embedding
from coopjax.models.layers import (SNConv, SNDense, compute_dtype, lrelu,
                                   model_labels)

Features = Dict[str, Any]


class ResBlock(nn.Module):
  """The authors' ``ResnetBlock``: lrelu, conv3x3, + time projection, lrelu,
  conv3x3 times a per-channel ``g``, + shortcut (a 3x3 conv with bias where
  the channels change, else the identity).

  The time projection ``lrelu(temb_map(lrelu(emb)))`` is a separate method,
  :meth:`time_projection`, so that it is computed once per noise level.
  Parameter names follow the authors' state dict: ``conv1``, ``conv2``,
  ``temb_map``, ``short_cut``, ``g``.
  """
  features: int
  use_sn: bool = True
  dtype: Optional[Any] = None

  def setup(self):
    conv = lambda: SNConv(self.features, 3, self.use_sn, dtype=self.dtype)
    self.conv1 = conv()
    self.conv2 = conv()
    self.short_cut = conv()
    self.temb_map = SNDense(self.features, self.use_sn)
    self.g = self.param('g', nn.initializers.ones, (self.features,))

  def time_projection(self, emb: jax.Array,
                      update_stats: bool = False) -> jax.Array:
    """``lrelu(temb_map(lrelu(emb)))`` ``[N, features]``."""
    return lrelu(self.temb_map(lrelu(emb), update_stats))

  def __call__(self, x: jax.Array, time_proj: jax.Array,
               update_stats: bool = False) -> jax.Array:
    h = self.conv1(lrelu(x), update_stats)
    h = h + time_proj[:, None, None, :].astype(h.dtype)
    h = self.conv2(lrelu(h), update_stats) * self.g.astype(h.dtype)
    if x.shape[-1] != self.features:
      x = self.short_cut(x, update_stats)
    return h + x


class ResNetEnergy(nn.Module):
  """The CDRL image EBM ``f_theta(x, logsnr[, label]) -> [B]`` (higher = more likely).

  The authors' ``models/ebm.py`` (``ebm_cond.py`` with ``num_classes``).
  Parameter names follow their state dict (see
  :mod:`coopjax.convert.cdrl`): ``temb_map1``, ``temb_map2``, ``y_map``,
  ``stem`` (their ``module_list.0``), ``blocks_<n>`` (the n-th residual
  block), ``temb_final``.

  Attributes:
    width: channels of the first stage (the authors tie it to ``temb_dim``:
      128 for CIFAR-10).
    mults: channel multiplier per resolution; its length is the number of
      resolutions (4 at 32x32, 5 at 64x64).
    blocks_per_res: residual blocks per resolution.
    temb_dim: sinusoidal embedding width; the embedding MLP is 4x wider.
    use_sn: spectral norm on every conv and dense layer but the head.
    num_classes: conditioning labels (0: unconditional); label 0 is the
      null class: the one-hot of ``num_classes + 1`` goes through a
      (spectrally normalised) dense layer added to the time embedding.
    dtype: compute dtype, 'float32' or 'bfloat16' (parameters and the energy
      stay float32).
  """
  width: int = 128
  mults: Sequence[int] = (1, 2, 2, 2)
  blocks_per_res: int = 8
  temb_dim: int = 128
  use_sn: bool = True
  num_classes: int = 0
  dtype: Any = 'float32'

  def setup(self):
    dtype = compute_dtype(self.dtype)
    widths = [self.width * m for m in self.mults
              for _ in range(self.blocks_per_res)]
    emb_dim = 4 * self.temb_dim
    self.temb_map1 = SNDense(emb_dim, self.use_sn)
    self.temb_map2 = SNDense(emb_dim, self.use_sn)
    if self.num_classes:
      self.y_map = SNDense(emb_dim, self.use_sn)
    self.stem = SNConv(self.width, 3, self.use_sn, dtype=dtype)
    self.blocks = [ResBlock(w, self.use_sn, dtype) for w in widths]
    self.temb_final = SNDense(widths[-1], use_sn=False, use_bias=False)

  def time_features(self, logsnr: jax.Array, update_stats: bool = False,
                    label: Optional[jax.Array] = None) -> Features:
    """Noise-level (and class) features, computed once per level.

    Args:
      logsnr: ``[N]`` noise levels.
      update_stats: advance the spectral-norm power iteration.
      label: ``[N]`` model labels (0 = null), or None (the null class for a
        conditional network).

    Returns:
      ``{'blocks': tuple of [N, channels] per block, 'head': [N, channels]}``,
      float32.
    """
    emb = logsnr_embedding(logsnr, self.temb_dim)
    emb = self.temb_map2(lrelu(self.temb_map1(emb, update_stats)),
                         update_stats)
    emb = self._add_label(emb, label, update_stats)
    return {'blocks': tuple(b.time_projection(emb, update_stats)
                            for b in self.blocks),
            'head': self.temb_final(lrelu(emb))}

  def _add_label(self, emb: jax.Array, label: Optional[jax.Array],
                 update_stats: bool):
    label = model_labels(label, emb.shape[0], self.num_classes, 'ResNetEnergy')
    if label is None:
      return emb
    one_hot = jax.nn.one_hot(label, self.num_classes + 1, dtype=emb.dtype)
    return emb + self.y_map(one_hot, update_stats)

  def energy(self, x: jax.Array, features: Features,
             update_stats: bool = False) -> jax.Array:
    """Network output ``f_theta(x)`` ``[B]`` (float32) given time features.

    Args:
      x: ``[B, H, W, C]`` images; H and W divisible by
        ``2 ** (len(mults) - 1)``.
      features: :meth:`time_features` of ``B`` (or broadcastable 1) levels.
      update_stats: advance the spectral-norm power iteration.
    """
    if x.ndim != 4:
      raise ValueError(f'ResNetEnergy expects images [B, H, W, C]; got shape '
                       f'{x.shape}.')
    h = self.stem(x.astype(compute_dtype(self.dtype)), update_stats)
    blocks = iter(zip(self.blocks, features['blocks']))
    for i in range(len(self.mults)):
      if i:
        h = nn.avg_pool(h, (2, 2), strides=(2, 2))
      for _ in range(self.blocks_per_res):
        block, proj = next(blocks)
        h = block(h, proj, update_stats)
    pooled = jnp.sum(nn.relu(h).astype(jnp.float32), axis=(1, 2))
    return jnp.sum(pooled * features['head'].astype(jnp.float32), axis=-1)

  def __call__(self, x: jax.Array, logsnr: jax.Array,
               update_stats: bool = False,
               label: Optional[jax.Array] = None) -> jax.Array:
    return self.energy(x, self.time_features(logsnr, update_stats, label),
                       update_stats)
