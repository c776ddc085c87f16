"""CoopFlow's image EBM as the authors' ``EBM_res`` (``models/ebm/ebm.py``).

``f_theta(x)``: a 3x3 conv to ``width`` channels and swish, then one
:class:`ResPoolBlock` per entry of ``mults`` (each halving the resolution;
widths ``128 -> 256 -> 512 -> 1024`` at the reference ``width=128``,
``mults=(2, 4, 8)``), then a 4x4 VALID conv to ``head_features`` (100)
outputs, all summed (over space too, where the head leaves more than one
position). Every layer has PyTorch's default initialisation
(:mod:`coopjax.models.torch_init`). 32x32 images: 17.1M parameters.

The authors add one more block of width ``8 * width`` for 64x64 images
(``mults=(2, 4, 8, 8)`` here): after the blocks the feature map is 4x4 and
the head's 4x4 conv leaves one position.

The block is post-activation, with a swish 3x3 conv shortcut::

    pool2(swish(conv2(swish(conv1(x)))) + swish(res(x)))

``conv1`` keeps the input width, ``conv2`` and ``res`` change it.
"""

from __future__ import annotations

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from coopjax.models.layers import Conv
from coopjax.models.torch_init import conv_fan_in, torch_default


def torch_conv(features: int, in_features: int, kernel: int,
               padding='SAME', name: Optional[str] = None) -> nn.Module:
  """A stride-1 conv with PyTorch's default initialisation ('SAME' ones
  through :class:`coopjax.models.layers.Conv`)."""
  init = torch_default(conv_fan_in(in_features, (kernel, kernel)))
  if padding == 'SAME':
    return Conv(features, kernel, kernel_init=init, bias_init=init, name=name)
  return nn.Conv(features, (kernel, kernel), padding=padding,
                 kernel_init=init, bias_init=init, name=name)


class ResPoolBlock(nn.Module):
  """The authors' ``block``: post-activation swish convs, a swish 3x3 conv
  shortcut, then 2x2 average pooling.

  Attributes:
    features: output channels.
  """
  features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    h = nn.swish(torch_conv(c, c, 3, name='conv1')(x))
    h = nn.swish(torch_conv(self.features, c, 3, name='conv2')(h))
    r = nn.swish(torch_conv(self.features, c, 3, name='res')(x))
    return nn.avg_pool(h + r, (2, 2), (2, 2))


class EBMRes(nn.Module):
  """The authors' ``EBM_res``: ``[B, H, W, C]`` images to ``[B]`` values.

  Attributes:
    width: channels of the first conv (``n_f``, 128).
    mults: output width of each block in units of ``width`` ((2, 4, 8) for
      32x32 images, (2, 4, 8, 8) for 64x64).
    head_features: outputs of the 4x4 head conv, summed (100).
  """
  width: int = 128
  mults: Sequence[int] = (2, 4, 8)
  head_features: int = 100

  @nn.compact
  def __call__(self, x: jax.Array,
               logsnr: Optional[jax.Array] = None) -> jax.Array:
    """``f_theta(x)`` per image; ``logsnr`` is ignored (unconditional)."""
    del logsnr
    if x.ndim != 4:
      raise ValueError(f'EBMRes expects images [B, H, W, C]; got {x.shape}.')
    side = 4 * 2 ** len(self.mults)
    if x.shape[1] < side or x.shape[2] < side:
      raise ValueError(
          f'EBMRes with {len(self.mults)} blocks pools the image '
          f'{len(self.mults)} times before a 4x4 head: it needs sides of at '
          f'least {side}, got {x.shape[1:3]} (use fewer mults).')
    h = nn.swish(torch_conv(self.width, x.shape[-1], 3, name='conv_in')(x))
    for i, mult in enumerate(self.mults):
      h = ResPoolBlock(self.width * mult, name=f'block{i}')(h)
    out = torch_conv(self.head_features, h.shape[-1], 4, padding='VALID',
                     name='head')(h)
    return jnp.sum(out, axis=(1, 2, 3))
