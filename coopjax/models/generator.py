"""Top-down convolutional generators ``x = g(z)`` (DCGAN-style, tanh output).

:class:`ReferenceGenerator` is the authors' (``_netG`` of
``Latent-Space-Normalizing-Flow``). :class:`Generator`, a smaller one for the
CPU demos, is described here: the generator of the latent flow-prior model (docs/algorithms.md, section 4): a
dense layer maps the latent ``z`` ``[B, D]`` to a ``base x base`` feature map
with ``width * 2^(num_up - 1)`` channels; ``num_up`` stride-2 transposed
convolutions (kernel 4) double the resolution and halve the channels, with
leaky ReLU (0.2) between them; the last one outputs the image channels,
squashed by ``tanh`` into [-1, 1]. ``base * 2^num_up`` is the image size.
"""

from __future__ import annotations

from typing import Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from coopjax.models import torch_init


class Generator(nn.Module):
  """``g(z)``: ``[B, D]`` latents to ``[B, H, W, C]`` images in [-1, 1].

  Attributes:
    image_shape: ``(H, W, C)`` of the output; ``H`` and ``W`` must be
      divisible by ``2^num_up``.
    width: channels before the last upsampling (doubled per earlier one).
    num_up: number of stride-2 upsamplings.
  """
  image_shape: Tuple[int, int, int]
  width: int = 64
  num_up: int = 3

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    h, w, c = self.image_shape
    factor = 2 ** self.num_up
    if self.num_up < 1 or h % factor or w % factor:
      raise ValueError(
          f'Generator: image size {h}x{w} must be divisible by 2^num_up = '
          f'{factor} (num_up={self.num_up} >= 1); change '
          'config.model.gen_num_up.')
    if z.ndim != 2:
      raise ValueError(f'Generator expects latents [B, D]; got {z.shape}.')
    ch = self.width * 2 ** (self.num_up - 1)
    y = nn.Dense(h // factor * (w // factor) * ch)(z)
    y = nn.leaky_relu(y.reshape(z.shape[0], h // factor, w // factor, ch), 0.2)
    for i in range(self.num_up - 1):
      y = nn.ConvTranspose(ch // 2 ** (i + 1), (4, 4), (2, 2), 'SAME')(y)
      y = nn.leaky_relu(y, 0.2)
    y = nn.ConvTranspose(c, (4, 4), (2, 2), 'SAME')(y)
    return jnp.tanh(y)


def conv_transpose_torch(x: jax.Array, kernel: jax.Array, bias: jax.Array,
                         stride: int, padding: int) -> jax.Array:
  """PyTorch's ``ConvTranspose2d`` on ``[B, H, W, C]``, exactly.

  ``kernel`` is ``[kh, kw, in, out]`` (PyTorch's ``[in, out, kh, kw]``
  transposed); the output side is ``(H - 1) stride - 2 padding + kh``.
  """
  kh, kw = kernel.shape[:2]
  flipped = kernel[::-1, ::-1]
  y = jax.lax.conv_general_dilated(
      x, flipped, window_strides=(1, 1),
      padding=[(kh - 1 - padding,) * 2, (kw - 1 - padding,) * 2],
      lhs_dilation=(stride, stride),
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return y + bias


class TorchConvTranspose(nn.Module):
  """``ConvTranspose2d(in, features, kernel, stride, padding)`` with Xavier
  normal weights (the authors' ``weights_init_xavier``) and PyTorch's default
  bias (``U(+-1/sqrt(features * kernel^2))``)."""
  features: int
  kernel: int
  stride: int
  padding: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.param('kernel', torch_init.xavier_normal(),
                   (self.kernel, self.kernel, x.shape[-1], self.features))
    fan_in = torch_init.conv_transpose_fan_in(self.features,
                                              (self.kernel, self.kernel))
    b = self.param('bias', torch_init.torch_default(fan_in), (self.features,))
    return conv_transpose_torch(x, k, b, self.stride, self.padding)


class ReferenceGenerator(nn.Module):
  """The latent flow prior's generator as the authors' ``_netG``.

  From ``z`` ``[B, D]`` (a 1x1 map): a ``base x base`` transposed conv to
  ``8 ngf`` channels, then stride-2 4x4 transposed convs (padding 1) halving
  the channels, leaky ReLU (0.2) after each, and a last transposed conv to
  the image channels, ``tanh``. The last one is 4x4 stride 2 (``last_stride
  =2``) or 3x3 stride 1 padding 1 (``last_stride=1``, the authors' CIFAR-10).
  No batch norm. Xavier-normal weights, PyTorch's default biases.

  The authors' sizes: SVHN ``ngf=64, base=4`` (512 -> 256 -> 128 -> 3),
  CIFAR-10 ``ngf=128, base=8, last_stride=1`` (1024 -> 512 -> 256 -> 3,
  18.9M parameters), CelebA 64x64 ``ngf=128, base=4`` (their README's
  command; 1024 -> 512 -> 256 -> 128 -> 3).

  Attributes:
    image_shape: ``(H, W, C)``, ``H == W == base * 2^n`` for some ``n >= 1``
      (``n >= 0`` with ``last_stride=1``).
    ngf: ``ngf``; the first map has ``8 ngf`` channels.
    base: side of the first map.
    last_stride: 2 or 1.
  """
  image_shape: Tuple[int, int, int]
  ngf: int = 64
  base: int = 4
  last_stride: int = 2

  def widths(self) -> Tuple[int, ...]:
    """Channels of the maps before the last layer (``8 ngf`` first)."""
    h, w, _ = self.image_shape
    ups = (h // self.base).bit_length() - 1
    n = ups + (1 if self.last_stride == 1 else 0)
    if (h != w or self.base * 2 ** ups != h or self.last_stride not in (1, 2)
        or n < 1):
      raise ValueError(
          f'ReferenceGenerator: image {h}x{w} must be square with side '
          f'base * 2^n (base={self.base}, n >= 1 with last_stride 2, n >= 0 '
          f'with last_stride 1; got last_stride={self.last_stride}).')
    return tuple(self.ngf * 8 // 2 ** i for i in range(n))

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    if z.ndim != 2:
      raise ValueError(f'Generator expects latents [B, D]; got {z.shape}.')
    widths = self.widths()
    y = z[:, None, None, :]
    y = TorchConvTranspose(widths[0], self.base, 1, 0, name='up0')(y)
    y = nn.leaky_relu(y, 0.2)
    for i, width in enumerate(widths[1:], start=1):
      y = nn.leaky_relu(TorchConvTranspose(width, 4, 2, 1, name=f'up{i}')(y),
                        0.2)
    kernel, pad = (4, 1) if self.last_stride == 2 else (3, 1)
    y = TorchConvTranspose(self.image_shape[-1], kernel, self.last_stride,
                           pad, name=f'up{len(widths)}')(y)
    return jnp.tanh(y)
