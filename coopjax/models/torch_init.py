"""PyTorch's default parameter initialisation, as Flax initializers.

``torch.nn.Conv2d``, ``ConvTranspose2d`` and ``Linear`` initialise their
weight with ``kaiming_uniform_(w, a=sqrt(5))`` and their bias uniformly in
``+-1 / sqrt(fan_in)``. The gain ``sqrt(2 / (1 + a^2)) = sqrt(1/3)`` makes the
weight bound ``gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in)`` too, so both are
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``: a variance of ``1 / (3 fan_in)``,
a third of Flax's default ``lecun_normal`` (``1 / fan_in``).

``fan_in`` is PyTorch's: ``weight.size(1) * kernel area``. For a convolution
that is ``in_channels * kh * kw``; for a *transposed* convolution, whose
weight is stored ``[in, out, kh, kw]``, it is ``out_channels * kh * kw``
(PyTorch's quirk, kept here so that initial scales match the authors').

Also :func:`xavier_normal`, PyTorch's ``xavier_normal_`` (an untruncated
normal, unlike JAX's ``glorot_normal``).
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax.linen import initializers


def uniform(bound: float):
  """An initializer drawing ``U(-bound, bound)``."""

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def torch_default(fan_in: int):
  """PyTorch's default weight and bias initializer for a layer of ``fan_in``:
  ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (see the module docstring)."""
  if fan_in < 1:
    raise ValueError(f'fan_in must be >= 1, got {fan_in}.')
  return uniform(1.0 / math.sqrt(fan_in))


def conv_fan_in(in_channels: int, kernel_size: Sequence[int]) -> int:
  """PyTorch's ``fan_in`` of a convolution (``in * kh * kw``)."""
  return int(in_channels * math.prod(kernel_size))


def conv_transpose_fan_in(out_channels: int,
                          kernel_size: Sequence[int]) -> int:
  """PyTorch's ``fan_in`` of a transposed convolution (``out * kh * kw``)."""
  return int(out_channels * math.prod(kernel_size))


def xavier_normal(gain: float = 1.0):
  """PyTorch's ``xavier_normal_``: ``N(0, gain^2 * 2 / (fan_in + fan_out))``
  with fans over the last two axes times the kernel area (any layout whose
  last two axes are the channel axes)."""
  return initializers.variance_scaling(gain ** 2, 'fan_avg', 'normal')
