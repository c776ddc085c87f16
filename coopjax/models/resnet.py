"""The CDRL image EBM: a spectrally normalised ResNet ``f_theta(x, logsnr[, c])``.

Architecture (docs/algorithms.md, section 2.10): conv 3x3 to ``width``
channels; one stage per entry of ``mults`` with ``blocks_per_res`` residual
blocks of ``width * mult`` channels, 2x2 average pooling between stages;
block = lrelu, conv3x3, + Dense(lrelu(temb)), lrelu, conv3x3 times a learnable
per-channel scale, + shortcut; head: ReLU, sum over space, dot with a
projection of the embedding. Spectral norm on every conv and dense. Where
this departs from the authors' EBM (tracked): docs/algorithms.md, 5.1.

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
  """lrelu, conv3x3, + time projection, lrelu, conv3x3 * g, + shortcut."""
  features: int
  use_sn: bool = True
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, x: jax.Array, time_proj: jax.Array,
               update_stats: bool = False) -> jax.Array:
    conv = lambda k=3: SNConv(self.features, k, self.use_sn, dtype=self.dtype)
    h = conv()(lrelu(x), update_stats)
    h = h + time_proj[:, None, None, :].astype(h.dtype)
    h = conv()(lrelu(h), update_stats)
    h = h * self.param('g', nn.initializers.ones, (self.features,)).astype(
        h.dtype)
    if x.shape[-1] != self.features:
      x = SNConv(self.features, 1, self.use_sn, use_bias=False,
                 dtype=self.dtype)(x, update_stats)
    return h + x


class ResNetEnergy(nn.Module):
  """The CDRL image EBM ``f_theta(x, logsnr[, label]) -> [B]`` (higher = more likely).

  Attributes:
    width: channels of the first stage (128 for CIFAR-10, 256 "large").
    mults: channel multiplier per resolution; its length is the number of
      resolutions (4 at 32x32, 5 at 64x64).
    blocks_per_res: residual blocks per resolution.
    temb_dim: sinusoidal embedding width; the embedding MLP is 4x wider.
    use_sn: spectral norm on every conv and dense layer.
    num_classes: conditioning labels (0: unconditional); label 0 is the
      null class, so the embedding table has ``num_classes + 1`` rows.
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
    self.temb_in = SNDense(4 * self.temb_dim, self.use_sn)
    self.temb_out = SNDense(4 * self.temb_dim, self.use_sn)
    self.time_maps = [SNDense(w, self.use_sn) for w in widths]
    self.head_map = SNDense(widths[-1], self.use_sn)
    if self.num_classes:
      self.class_embed = nn.Embed(self.num_classes + 1, 4 * self.temb_dim)
    self.stem = SNConv(self.width, 3, self.use_sn, dtype=dtype)
    self.blocks = [ResBlock(w, self.use_sn, dtype) for w in widths]

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
    emb = self.temb_out(lrelu(self.temb_in(emb, update_stats)), update_stats)
    emb = self._add_label(emb, label)
    act = lrelu(emb)
    return {'blocks': tuple(m(act, update_stats) for m in self.time_maps),
            'head': self.head_map(act, update_stats)}

  def _add_label(self, emb: jax.Array, label: Optional[jax.Array]):
    label = model_labels(label, emb.shape[0], self.num_classes, 'ResNetEnergy')
    return emb if label is None else emb + self.class_embed(label)

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
