"""Dequantisation, the logit transform and bits per dimension for image flows.

Units. Images are scaled to [-1, 1] (8-bit value ``k`` as ``k / 127.5 - 1``).
A flow's ``log_prob(y)`` is a density in nats per unit volume of that [-1, 1]
scale. For 8-bit data, dequantise first: ``uniform_dequantize`` puts value
``k`` uniformly in its bin ``[2k / 256 - 1, 2(k + 1) / 256 - 1)`` of width
``2 / 256``, so, by Jensen's inequality, the discrete log-likelihood obeys::

    log P(k) >= E_u[log p(y)] + D log(2 / 256)

and ``bits_per_dim(log_p, D)`` returns the matching upper bound on the discrete
negative log-likelihood in bits per dimension (8 for a uniform density).
"""

import math
from typing import Tuple

import jax
import jax.numpy as jnp

DEFAULT_LOGIT_ALPHA = 0.05


def uniform_dequantize(key: jax.Array, x: jax.Array,
                       num_bins: int = 256, snap: bool = True) -> jax.Array:
  """Uniform dequantisation of quantised data in [-1, 1].

  Recovers the level ``k = round((x + 1) (num_bins - 1) / 2)`` and returns
  ``(k + u) * 2 / num_bins - 1`` with ``u ~ U(0, 1)``: ``x`` plus
  ``U(0, 2 / num_bins)`` noise, with the bins re-spaced to tile ``[-1, 1)``
  exactly (the levels of ``k / 127.5 - 1`` are ``2 / 255`` apart).

  With ``snap=False``, ``x`` is taken to be continuous in [-1, 1] already (a
  model's sample in the space of dequantised data): it is re-binned, i.e. moved
  to a uniform position inside its own bin of the ``num_bins`` tiling
  ``[-1, 1)`` (``1`` counts as the last bin). Values that many samples share,
  such as a clipped box edge, are spread over their bin instead of forming a
  point mass; an ``x`` already distributed as dequantised data keeps that
  distribution.

  Args:
    key: PRNG key.
    x: data in [-1, 1] on the grid ``2k / (num_bins - 1) - 1`` (any values in
      [-1, 1] with ``snap=False``).
    num_bins: number of quantisation levels (256 for 8-bit images).
    snap: round to the nearest level first.

  Returns:
    Continuous data of the shape of ``x``, in ``[-1, 1)``.
  """
  if snap:
    levels = jnp.round((x + 1.0) * 0.5 * (num_bins - 1))
  else:
    levels = jnp.clip(jnp.floor((x + 1.0) * 0.5 * num_bins), 0, num_bins - 1)
  noise = jax.random.uniform(key, x.shape, x.dtype)
  return (levels + noise) * (2.0 / num_bins) - 1.0


def logit_transform(
    y: jax.Array,
    alpha: float = DEFAULT_LOGIT_ALPHA) -> Tuple[jax.Array, jax.Array]:
  """RealNVP's logit transform of data in [-1, 1] to the real line.

  ``p = alpha + (1 - 2 alpha) (y + 1) / 2`` and ``s = log(p / (1 - p))``.

  Args:
    y: ``[B, ...]`` data in [-1, 1].
    alpha: margin keeping ``p`` away from 0 and 1 (0.05 for CIFAR-10).

  Returns:
    ``(s, logdet)``: transformed data like ``y`` and ``[B]`` values of
    ``log|det ds/dy|``.
  """
  p = alpha + (1.0 - 2.0 * alpha) * 0.5 * (y + 1.0)
  s = jnp.log(p) - jnp.log1p(-p)
  log_jac = math.log(0.5 * (1.0 - 2.0 * alpha)) - jnp.log(p) - jnp.log1p(-p)
  return s, jnp.sum(log_jac.reshape(y.shape[0], -1), axis=-1)


def inverse_logit_transform(
    s: jax.Array, alpha: float = DEFAULT_LOGIT_ALPHA) -> jax.Array:
  """Inverse of :func:`logit_transform`: maps ``s`` back to [-1, 1]."""
  return 2.0 * (jax.nn.sigmoid(s) - alpha) / (1.0 - 2.0 * alpha) - 1.0


def bits_per_dim(log_prob: jax.Array, num_dims: int,
                 num_bins: int = 256) -> jax.Array:
  """Converts a density on [-1, 1]^D (nats) to discrete bits per dimension.

  Args:
    log_prob: log-density of dequantised data in the [-1, 1] scale, in nats.
    num_dims: number of dimensions ``D`` (``H * W * C``).
    num_bins: quantisation levels per dimension.

  Returns:
    ``(-log_prob / D + log(num_bins / 2)) / log 2``: an upper bound on the
    discrete data's negative log-likelihood in bits per dimension.
  """
  nats = -log_prob / num_dims + math.log(num_bins / 2.0)
  return nats / math.log(2.0)
