"""The CDRL initializer: a DDPM-style U-Net ``g_phi(x_t, logsnr_t[, c])``.

As in the paper (docs/algorithms.md, section 2.4), the U-Net predicts the scaled ``y = sqrt(as_t)
x_{t-1}`` directly as ``x_t + out`` with a zero-initialised last layer, so
training starts from ``g = x_t``. Residual blocks with GroupNorm and SiLU, the
embedding scaling and shifting the second GroupNorm, dropout before the second
conv; self-attention
at the resolutions in ``attn_resolutions``; strided-conv downsampling and
nearest-neighbour + conv upsampling (the authors resample with
time-conditioned residual blocks: a tracked departure, docs/algorithms.md 5.1);
skip connections concatenated.
"""

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from coopjax.models.embedding import logsnr_embedding
from coopjax.models.layers import (AttentionBlock, compute_dtype,
                                   example_dropout, group_norm, model_labels,
                                   torch_default_init)


def _conv(features: int, dtype, kernel: int = 3, strides: int = 1,
          kernel_init=torch_default_init) -> nn.Conv:
  return nn.Conv(features, (kernel, kernel), strides=(strides, strides),
                 padding='SAME', dtype=dtype, kernel_init=kernel_init)


class UNetBlock(nn.Module):
  """GroupNorm, SiLU, conv, GroupNorm scaled and shifted by the embedding,
  SiLU, dropout, conv (zero-initialised), + shortcut.

  Scale-shift rather than DDPM's additive embedding: a GroupNorm with one
  channel per group (narrow networks) would remove an added per-channel
  constant, and with it the noise level and the label.
  """
  features: int
  dropout: float = 0.0
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, x: jax.Array, emb: jax.Array,
               dropout_keys: Optional[jax.Array] = None) -> jax.Array:
    h = _conv(self.features, self.dtype)(
        nn.silu(group_norm(x.shape[-1], self.dtype)(x)))
    scale, shift = jnp.split(
        nn.Dense(2 * self.features, dtype=self.dtype,
                 kernel_init=torch_default_init)(nn.silu(emb))[:, None, None],
        2, axis=-1)
    h = group_norm(self.features, self.dtype)(h) * (1 + scale) + shift
    h = nn.silu(h)
    if dropout_keys is not None:
      h = example_dropout(h, self.dropout, dropout_keys)
    h = _conv(self.features, self.dtype,
              kernel_init=nn.initializers.zeros)(h)
    if x.shape[-1] != self.features:
      x = _conv(self.features, self.dtype, kernel=1)(x)
    return x + h


class UNetInitializer(nn.Module):
  """The initializer mean ``g_phi(x_t, logsnr_t[, label]) = x_t + out``.

  Attributes:
    width: channels of the first level (64 for CIFAR-10).
    mults: channel multiplier per resolution (``(1, 1, 1)`` at 32x32).
    num_res_blocks: residual blocks per resolution on the way down (one more
      on the way up).
    attn_resolutions: spatial sizes with self-attention (``(16, 8)``).
    dropout: dropout rate, active only when ``dropout_keys`` are given.
    num_classes: conditioning labels (0: unconditional); label 0 is null.
    dtype: compute dtype, 'float32' or 'bfloat16' (parameters and the output
      stay float32).
  """
  width: int = 64
  mults: Sequence[int] = (1, 1, 1)
  num_res_blocks: int = 3
  attn_resolutions: Sequence[int] = (16, 8)
  dropout: float = 0.1
  num_classes: int = 0
  dtype: Any = 'float32'

  @nn.compact
  def __call__(self, x_t: jax.Array, logsnr: jax.Array,
               label: Optional[jax.Array] = None,
               dropout_keys: Optional[jax.Array] = None) -> jax.Array:
    """The proposal mean ``[B, H, W, C]`` for ``x_t`` at ``logsnr`` ``[B]``.

    Args:
      x_t: ``[B, H, W, C]`` noisy images; H and W divisible by
        ``2 ** (len(mults) - 1)``.
      logsnr: ``[B]`` noise levels of ``x_t``.
      label: ``[B]`` model labels (0 = null), or None (null class).
      dropout_keys: ``[B]`` per-example keys switching dropout on, or None.
    """
    factor = 2 ** (len(self.mults) - 1)
    if x_t.ndim != 4 or x_t.shape[1] % factor or x_t.shape[2] % factor:
      raise ValueError(f'UNetInitializer with {len(self.mults)} resolutions '
                       f'expects images [B, H, W, C] with H, W divisible by '
                       f'{factor}; got shape {x_t.shape}.')
    dtype = compute_dtype(self.dtype)
    emb = logsnr_embedding(logsnr, self.width)
    emb = nn.Dense(4 * self.width, kernel_init=torch_default_init)(emb)
    emb = nn.Dense(4 * self.width, kernel_init=torch_default_init)(
        nn.silu(emb))
    labels = model_labels(label, x_t.shape[0], self.num_classes,
                          'UNetInitializer')
    if labels is not None:
      emb = emb + nn.Embed(self.num_classes + 1, 4 * self.width,
                           name='class_embed')(labels)
    count = iter(range(10**6))

    def block(h, features, attention=None):
      keys = None
      if dropout_keys is not None:
        keys = jax.vmap(jax.random.fold_in, (0, None))(dropout_keys,
                                                        next(count))
      h = UNetBlock(features, self.dropout, dtype)(h, emb, keys)
      if attention is None:
        attention = h.shape[1] in self.attn_resolutions
      if attention:
        h = AttentionBlock(dtype)(h)
      return h

    h = _conv(self.width, dtype)(x_t.astype(dtype))
    skips = [h]
    for i, mult in enumerate(self.mults):
      for _ in range(self.num_res_blocks):
        h = block(h, self.width * mult)
        skips.append(h)
      if i < len(self.mults) - 1:
        h = _conv(h.shape[-1], dtype, strides=2)(h)
        skips.append(h)
    h = block(h, h.shape[-1], attention=True)  # the middle: block, attention,
    h = block(h, h.shape[-1], attention=False)  # block
    for i, mult in reversed(list(enumerate(self.mults))):
      for _ in range(self.num_res_blocks + 1):
        h = block(jnp.concatenate([h, skips.pop()], axis=-1),
                  self.width * mult)
      if i:
        b, hh, ww, c = h.shape
        h = jax.image.resize(h, (b, 2 * hh, 2 * ww, c), 'nearest')
        h = _conv(c, dtype)(h)
    h = nn.silu(group_norm(h.shape[-1], dtype)(h))
    out = _conv(x_t.shape[-1], dtype, kernel_init=nn.initializers.zeros)(h)
    return x_t + out.astype(x_t.dtype)
