"""CoopFlow's convolutional EBM: residual blocks with swish and average pooling.

``ConvEnergy`` maps ``[B, H, W, C]`` images to ``[B]`` network outputs
``f_theta(x)`` (higher = more likely): a 3x3 conv to ``width`` channels, then
one stage per entry of ``mults`` (``blocks_per_res`` residual blocks of
``width * mult`` channels, 2x2 average pooling between stages), swish, a sum
over space and a linear head. No spectral norm, no normalisation layers.
It is the small image EBM of the CPU demos (configs/coopflow_digits.py);
the authors' EBM is :class:`coopjax.models.ebm_res.EBMRes`.
"""

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class ResBlock(nn.Module):
  """``x + conv3x3(swish(conv3x3(swish(x))))``, a 1x1 conv on the skip if the
  width changes."""
  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = nn.Conv(self.features, (3, 3))(nn.swish(x))
    h = nn.Conv(self.features, (3, 3))(nn.swish(h))
    if x.shape[-1] != self.features:
      x = nn.Conv(self.features, (1, 1))(x)
    return x + h


class ConvEnergy(nn.Module):
  """Unconditional image EBM ``f_theta(x) -> [B]``.

  Attributes:
    width: channels of the first stage (128 in the reference).
    mults: channel multiplier per stage; stages are separated by 2x2 average
      pooling, so the image side must be divisible by ``2 ** (len(mults) - 1)``.
    blocks_per_res: residual blocks per stage.
  """
  width: int = 128
  mults: Sequence[int] = (1, 2, 2, 2)
  blocks_per_res: int = 1

  @nn.compact
  def __call__(self, x: jax.Array,
               logsnr: Optional[jax.Array] = None) -> jax.Array:
    """Network output per image.

    Args:
      x: ``[B, H, W, C]`` images in [-1, 1].
      logsnr: ignored (the model is unconditional); accepted so that the EBM
        is called like the noise-conditional ones.

    Returns:
      ``[B]`` values of ``f_theta(x)``.
    """
    del logsnr
    if x.ndim != 4:
      raise ValueError(f'ConvEnergy expects images [B, H, W, C]; got {x.shape}.')
    factor = 2 ** (len(self.mults) - 1)
    if x.shape[1] % factor or x.shape[2] % factor:
      raise ValueError(
          f'ConvEnergy with mults={tuple(self.mults)} pools '
          f'{len(self.mults) - 1} times: image sides must be divisible by '
          f'{factor}, got {x.shape[1:3]}. Use fewer mults.')
    h = nn.Conv(self.width, (3, 3))(x)
    for i, mult in enumerate(self.mults):
      for _ in range(self.blocks_per_res):
        h = ResBlock(self.width * mult)(h)
      if i < len(self.mults) - 1:
        h = nn.avg_pool(h, (2, 2), (2, 2))
    h = jnp.sum(nn.swish(h), axis=(1, 2))
    return nn.Dense(1)(h)[:, 0]
