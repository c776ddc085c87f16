"""The CDRL initializer: a DDPM-style U-Net ``g_phi(x_t, logsnr_t[, c])``.

The authors' U-Net (``models/unet.py`` of ``AlvinZhuyx/CDRL``, after
lucidrains' denoising-diffusion-pytorch; docs/algorithms.md, section 2.4):
the U-Net predicts the scaled ``y = sqrt(as_t) x_{t-1}`` directly as ``x_t +
out`` with a zero-initialised last layer, so training starts from ``g =
x_t``. Residual blocks with GroupNorm and SiLU, the embedding scaling and
shifting the second GroupNorm, dropout before the second conv;
self-attention after every block at the resolutions in
``attn_resolutions`` (and in the middle); down- and upsampling are
time-conditioned residual blocks with 2x2 average pooling / nearest
upsampling; skip connections concatenated.
"""

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from coopjax.models.embedding import logsnr_embedding
from coopjax.models.layers import (AttentionBlock, Conv, compute_dtype,
                                   example_dropout, group_norm, model_labels,
                                   torch_default_init)


def _conv(features: int, dtype, kernel: int = 3,
          kernel_init=torch_default_init, name: Optional[str] = None
          ) -> Conv:
  return Conv(features, kernel, dtype=dtype, kernel_init=kernel_init,
              name=name)


def downsample(x: jax.Array) -> jax.Array:
  """2x2 average pooling."""
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


def upsample(x: jax.Array) -> jax.Array:
  """Nearest-neighbour 2x upsampling."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


RESAMPLE = {None: None, 'down': downsample, 'up': upsample}


class UNetBlock(nn.Module):
  """The authors' U-Net ``ResnetBlock``: GroupNorm, SiLU, [resample], conv,
  GroupNorm scaled and shifted by the embedding, SiLU, dropout, conv
  (zero-initialised kernel), + shortcut ([resampled] input, 1x1 conv where
  the channels change).

  ``resample`` ('down': 2x2 average pooling, 'up': nearest neighbour)
  applies to both branches after the first normalisation. Layer names follow
  the authors' state dict: ``norm1``, ``conv1``, ``mlp``, ``norm2``,
  ``conv2``, ``res_conv``.
  """
  features: int
  dropout: float = 0.0
  resample: Optional[str] = None
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, x: jax.Array, emb: jax.Array,
               dropout_keys: Optional[jax.Array] = None) -> jax.Array:
    h = nn.silu(group_norm(x.shape[-1], self.dtype, name='norm1')(x))
    resample = RESAMPLE[self.resample]
    if resample is not None:
      h, x = resample(h), resample(x)
    h = _conv(self.features, self.dtype, name='conv1')(h)
    scale, shift = jnp.split(
        nn.Dense(2 * self.features, dtype=self.dtype, name='mlp',
                 kernel_init=torch_default_init)(nn.silu(emb))[:, None, None],
        2, axis=-1)
    h = group_norm(self.features, self.dtype, name='norm2')(h) * (
        1 + scale) + shift
    h = nn.silu(h)
    if dropout_keys is not None:
      h = example_dropout(h, self.dropout, dropout_keys)
    h = _conv(self.features, self.dtype, kernel_init=nn.initializers.zeros,
              name='conv2')(h)
    if x.shape[-1] != self.features:
      x = _conv(self.features, self.dtype, kernel=1, name='res_conv')(x)
    return x + h


class UNetInitializer(nn.Module):
  """The initializer mean ``g_phi(x_t, logsnr_t[, label]) = x_t + out``.

  The authors' ``models/unet.py`` (``unet_cond.py`` with ``num_classes``).
  Layer names follow their state dict (see :mod:`coopjax.convert.cdrl`):
  ``init_conv``, ``time_mlp_1``, ``time_mlp_3``, ``y_mlp``, ``downs_<l>_<k>``
  and ``ups_<l>_<k>`` (the k-th block or attention of level l, counted as
  they do), ``mid_block1``, ``mid_attn``, ``mid_block2``, ``norm``,
  ``final_conv``.

  Attributes:
    width: channels of the first level (64 for CIFAR-10).
    mults: channel multiplier per resolution (``(1, 1, 1)`` at 32x32).
    num_res_blocks: residual blocks per resolution on the way down (one more
      on the way up), besides the resampling blocks.
    attn_resolutions: spatial sizes with self-attention (``(16, 8)``).
    dropout: dropout rate, active only when ``dropout_keys`` are given.
    num_classes: conditioning labels (0: unconditional); label 0 is null:
      the one-hot of ``num_classes + 1`` goes through a dense layer added to
      the time embedding.
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
    dense = lambda n, name: nn.Dense(n, kernel_init=torch_default_init,
                                     name=name)
    emb = logsnr_embedding(logsnr, self.width)
    emb = dense(4 * self.width, 'time_mlp_1')(emb)
    emb = dense(4 * self.width, 'time_mlp_3')(nn.silu(emb))
    labels = model_labels(label, x_t.shape[0], self.num_classes,
                          'UNetInitializer')
    if labels is not None:
      emb = emb + dense(4 * self.width, 'y_mlp')(
          jax.nn.one_hot(labels, self.num_classes + 1, dtype=emb.dtype))
    count = iter(range(10**6))

    def block(h, features, name, resample=None):
      keys = None
      if dropout_keys is not None:
        keys = jax.vmap(jax.random.fold_in, (0, None))(dropout_keys,
                                                        next(count))
      return UNetBlock(features, self.dropout, resample, dtype, name=name)(
          h, emb, keys)

    def stage(h, prefix, skips, blocks, features):
      """``blocks`` residual blocks, each followed by attention at the
      attention resolutions; consumes ``skips`` on the way up."""
      k, outs = 0, []
      for _ in range(blocks):
        if skips is not None:
          h = jnp.concatenate([h, skips.pop()], axis=-1)
        h = block(h, features, f'{prefix}_{k}')
        k += 1
        if h.shape[1] in self.attn_resolutions:
          h = AttentionBlock(dtype, name=f'{prefix}_{k}')(h)
          k += 1
        outs.append(h)
      return h, outs, k

    last = len(self.mults) - 1
    h = _conv(self.width, dtype, name='init_conv')(x_t.astype(dtype))
    skips = [h]
    for i, mult in enumerate(self.mults):
      h, outs, k = stage(h, f'downs_{i}', None, self.num_res_blocks,
                         self.width * mult)
      skips += outs
      if i < last:
        h = block(h, h.shape[-1], f'downs_{i}_{k}', 'down')
        skips.append(h)
    h = block(h, h.shape[-1], 'mid_block1')
    h = AttentionBlock(dtype, name='mid_attn')(h)
    h = block(h, h.shape[-1], 'mid_block2')
    for j, i in enumerate(reversed(range(len(self.mults)))):
      h, _, k = stage(h, f'ups_{j}', skips, self.num_res_blocks + 1,
                      self.width * self.mults[i])
      if i:
        h = block(h, h.shape[-1], f'ups_{j}_{k}', 'up')
    h = nn.silu(group_norm(h.shape[-1], dtype, name='norm')(h))
    out = _conv(x_t.shape[-1], dtype, kernel_init=nn.initializers.zeros,
                name='final_conv')(h)
    return x_t + out.astype(x_t.dtype)
