"""Top-down convolutional generator ``x = g(z)`` (DCGAN-style, tanh output).

The generator of the latent flow-prior model (docs/algorithms.md, section 4): a
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
