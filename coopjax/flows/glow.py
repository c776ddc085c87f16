"""A multi-scale Glow/RealNVP flow for images, the proposal of CoopFlow.

Architecture (a lighter stand-in for the authors' Flow++; docs/algorithms.md): optional logit transform, then
``num_scales`` levels, each a squeeze (space-to-depth 2x2) followed by
``steps_per_scale`` steps of ActNorm -> invertible 1x1 conv (LU) -> affine
coupling (conv net of width ``hidden``, zero-initialised last conv, scale
``sigmoid(h + 2)``); after every level but the last, half of the channels are
factored out with a standard normal prior. The base distribution is therefore
``N(0, I)`` on all ``H * W * C`` latent coordinates.

The latent ``z`` returned by ``forward`` is one flat ``[B, H * W * C]`` array:
the flattened factored-out parts, level by level, then the flattened output
of the last level. ``inverse`` and ``sample`` use the same layout, so latent
interpolation or optimisation (CoopFlow reconstruction) work on plain vectors.

Usage (``image_shape`` is fixed at construction so the latent can be
unflattened)::

    flow = GlowFlow(image_shape=(32, 32, 3))
    variables = jax.jit(flow.init)(key, x_batch)   # data-dependent ActNorm
    z, logdet = flow.apply(variables, x, method=GlowFlow.forward)
    x = flow.apply(variables, z, method=GlowFlow.inverse)
    log_p = flow.apply(variables, x, method=GlowFlow.log_prob)   # [B], nats
    x = flow.apply(variables, key, 64, method=GlowFlow.sample)   # n static

``log_prob`` is the exact density of continuous ``x`` in nats per unit volume
of the [-1, 1] scale (the logit transform's Jacobian included); for 8-bit data
pass ``dequantize.uniform_dequantize(key, x)`` and report
``dequantize.bits_per_dim(log_p, H * W * C)``.
"""

import math
from typing import List, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from coopjax.flows.dequantize import inverse_logit_transform, logit_transform
from coopjax.flows.layers import FlowSampling, FlowStep


def squeeze(x: jax.Array) -> jax.Array:
  """Space-to-depth: ``[B, H, W, C] -> [B, H/2, W/2, 4C]``."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // 2, 2, w // 2, 2, c)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h // 2, w // 2, 4 * c)


def unsqueeze(x: jax.Array) -> jax.Array:
  """Depth-to-space, the inverse of :func:`squeeze`."""
  b, h, w, c = x.shape
  x = x.reshape(b, h, w, 2, 2, c // 4)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, c // 4)


def latent_shapes(image_shape: Sequence[int],
                  num_scales: int) -> List[Tuple[int, int, int]]:
  """Per-example shapes of the factored-out parts, then of the last output.

  Args:
    image_shape: ``(H, W, C)``.
    num_scales: number of levels.

  Returns:
    ``num_scales`` shapes whose sizes sum to ``H * W * C``.
  """
  h, w, c = image_shape
  shapes = []
  for _ in range(num_scales - 1):
    h, w, c = h // 2, w // 2, 2 * c
    shapes.append((h, w, c))
  shapes.append((h // 2, w // 2, 4 * c))
  return shapes


class GlowFlow(FlowSampling, nn.Module):
  """Multi-scale flow on ``[B, H, W, C]`` images with a standard normal base.

  Attributes:
    image_shape: ``(H, W, C)``; ``H`` and ``W`` divisible by
      ``2 ** num_scales``.
    num_scales: number of squeeze levels.
    steps_per_scale: flow steps per level.
    hidden: channels of the coupling networks.
    logit_alpha: if set, the flow models ``logit_transform(x, logit_alpha)``
      and ``inverse``/``sample`` apply the inverse transform, whose range is
      ``|x| < 1 / (1 - 2 logit_alpha)`` (clip to [-1, 1] if needed); if None
      the flow acts on ``x`` directly and samples are unbounded.
  """
  image_shape: Tuple[int, int, int]
  num_scales: int = 3
  steps_per_scale: int = 8
  hidden: int = 128
  logit_alpha: Optional[float] = None

  def setup(self):
    """Creates the flow steps and checks the configuration."""
    h, w, _ = self.image_shape
    factor = 2**self.num_scales
    if self.num_scales < 1 or h % factor or w % factor:
      raise ValueError(
          f'GlowFlow: image_shape={tuple(self.image_shape)} needs H and W '
          f'divisible by 2 ** num_scales = {factor} '
          f'(num_scales={self.num_scales}); use fewer scales or pad images.')
    self.steps = [
        FlowStep(self.hidden, conv=True)
        for _ in range(self.num_scales * self.steps_per_scale)
    ]

  @property
  def latent_dim(self) -> int:
    """Size ``H * W * C`` of the flat latent."""
    return math.prod(self.image_shape)

  def _level_steps(self, level: int):
    """The flow steps of one level, in forward order."""
    start = level * self.steps_per_scale
    return self.steps[start:start + self.steps_per_scale]

  def __call__(self, x: jax.Array):
    """Same as :meth:`forward`; ``model.init(key, x_batch)`` calls this."""
    return self.forward(x)

  def forward(self, x: jax.Array):
    """Maps images to the flat latent.

    Args:
      x: ``[B, H, W, C]`` images (dequantised if the data are discrete).

    Returns:
      ``(z, logdet)``: ``[B, H * W * C]`` latents and ``[B]`` values of
      ``log|det dz/dx|``.
    """
    if x.shape[1:] != tuple(self.image_shape):
      raise ValueError(f'GlowFlow(image_shape={tuple(self.image_shape)}) '
                       f'expects x of shape [B, *image_shape]; got {x.shape}.')
    batch = x.shape[0]
    logdet = jnp.zeros((batch,), x.dtype)
    if self.logit_alpha is not None:
      x, logdet = logit_transform(x, self.logit_alpha)
    latents = []
    for level in range(self.num_scales):
      x = squeeze(x)
      for step in self._level_steps(level):
        x, step_logdet = step(x)
        logdet = logdet + step_logdet
      if level < self.num_scales - 1:
        x, factored = jnp.split(x, 2, axis=-1)
        latents.append(factored.reshape(batch, -1))
    latents.append(x.reshape(batch, -1))
    return jnp.concatenate(latents, axis=-1), logdet

  def inverse(self, z: jax.Array) -> jax.Array:
    """Maps flat latents back to images.

    Args:
      z: ``[B, H * W * C]`` latents laid out as ``forward`` returns them.

    Returns:
      ``[B, H, W, C]`` images ``x`` with ``forward(x)[0] == z``.
    """
    if z.ndim != 2 or z.shape[-1] != self.latent_dim:
      raise ValueError(f'GlowFlow.inverse expects z of shape '
                       f'[B, {self.latent_dim}]; got {z.shape}.')
    batch = z.shape[0]
    shapes = latent_shapes(self.image_shape, self.num_scales)
    offsets = [0]
    for shape in shapes:
      offsets.append(offsets[-1] + math.prod(shape))
    parts = [
        z[:, lo:hi].reshape((batch,) + shape)
        for lo, hi, shape in zip(offsets[:-1], offsets[1:], shapes)
    ]
    x = parts[-1]
    for level in reversed(range(self.num_scales)):
      if level < self.num_scales - 1:
        x = jnp.concatenate([x, parts[level]], axis=-1)
      for step in reversed(self._level_steps(level)):
        x, _ = step(x, reverse=True)
      x = unsqueeze(x)
    if self.logit_alpha is not None:
      x = inverse_logit_transform(x, self.logit_alpha)
    return x
