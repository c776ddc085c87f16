"""The latent flow prior as the authors' ``_netF`` (Latent-Space-Normalizing-Flow).

A flow on vectors ``[B, D]`` with a standard normal base: ``num_steps``
steps of

* ActNorm with a log-scale factor of 3: ``y = (x + b) exp(3 logs)``, ``b``
  and ``logs`` drawn from ``N(0, 0.05^2)`` (the authors never run its
  data-dependent initialisation);
* an invertible linear map ``y = x W``, ``W`` a full matrix, random
  orthogonal at the start, ``log|det W|`` by ``slogdet``;
* an affine coupling: with ``[x_1, x_2]`` the halves and ``h = f(x_1)``,
  ``y_2 = (x_2 + h[0::2]) sigmoid(h[1::2] + 2)`` (shift and scale
  interleaved). ``f`` is Linear (no bias, ``N(0, 0.05^2)`` weights) ->
  ActNorm -> ReLU, twice, then a zero-initialised linear layer with bias
  whose output is multiplied by ``exp(3 logs)``, ``logs`` learnable and
  zero at the start.

``log_prob`` is the exact normalised density (the authors' training code
adds ``+ log(2 pi)`` once instead of ``-D/2 log(2 pi)``: a constant, the same
gradients). Same API as :class:`coopjax.flows.DenseFlow`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from coopjax.flows.layers import FlowSampling

LOGSCALE_FACTOR = 3.0
_HIGHEST = jax.lax.Precision.HIGHEST


def _small_normal(key, shape, dtype=jnp.float32):
  return 0.05 * jax.random.normal(key, shape, dtype)


def _orthogonal(key, shape, dtype=jnp.float32):
  q, _ = jnp.linalg.qr(jax.random.normal(key, shape, jnp.float32))
  return q.astype(dtype)


class ScaledActNorm(nn.Module):
  """``y = (x + b) * exp(3 logs)`` per feature; ``logdet = 3 sum(logs)``."""

  @nn.compact
  def __call__(self, x: jax.Array, reverse: bool = False):
    d = x.shape[-1]
    b = self.param('b', _small_normal, (d,))
    logs = LOGSCALE_FACTOR * self.param('logs', _small_normal, (d,))
    logdet = jnp.full((x.shape[0],), jnp.sum(logs), x.dtype)
    if reverse:
      return x * jnp.exp(-logs) - b, -logdet
    return (x + b) * jnp.exp(logs), logdet


class FullLinear(nn.Module):
  """``y = x W`` with a full ``[D, D]`` matrix (random orthogonal at first)."""

  @nn.compact
  def __call__(self, x: jax.Array, reverse: bool = False):
    w = self.param('w', _orthogonal, (x.shape[-1],) * 2)
    _, logabsdet = jnp.linalg.slogdet(w)
    logdet = jnp.full((x.shape[0],), logabsdet, x.dtype)
    if reverse:
      return jnp.matmul(x, jnp.linalg.inv(w), precision=_HIGHEST), -logdet
    return jnp.matmul(x, w, precision=_HIGHEST), logdet


class CouplingNet(nn.Module):
  """The authors' ``f``: (Linear -> ActNorm -> ReLU) x 2 -> zero Linear,
  output times ``exp(3 logs)``."""
  hidden: int
  out_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i in range(2):
      w = self.param(f'w{i}', _small_normal, (x.shape[-1], self.hidden))
      x = jnp.matmul(x, w, precision=_HIGHEST)
      x, _ = ScaledActNorm(name=f'actnorm{i}')(x)
      x = nn.relu(x)
    zeros = nn.initializers.zeros
    w = self.param('w_out', zeros, (self.hidden, self.out_features))
    b = self.param('b_out', zeros, (self.out_features,))
    logs = self.param('logs_out', zeros, (self.out_features,))
    return (jnp.matmul(x, w, precision=_HIGHEST) + b) * jnp.exp(
        LOGSCALE_FACTOR * logs)


class InterleavedCoupling(nn.Module):
  """``y_2 = (x_2 + h[0::2]) sigmoid(h[1::2] + 2)``, ``h = f(x_1)``."""
  hidden: int

  @nn.compact
  def __call__(self, x: jax.Array, reverse: bool = False):
    half = x.shape[-1] // 2
    x1, x2 = x[:, :half], x[:, half:]
    h = CouplingNet(self.hidden, 2 * x2.shape[-1], name='f')(x1)
    shift = h[:, 0::2]
    log_scale = jax.nn.log_sigmoid(h[:, 1::2] + 2.0)
    logdet = jnp.sum(log_scale, axis=-1)
    if reverse:
      return jnp.concatenate([x1, x2 * jnp.exp(-log_scale) - shift], -1), \
          -logdet
    return jnp.concatenate([x1, (x2 + shift) * jnp.exp(log_scale)], -1), logdet


class LatentGlow(FlowSampling, nn.Module):
  """The authors' latent-space flow prior on ``[B, features]``.

  Attributes:
    features: ``D`` (even).
    num_steps: flow steps (``f_depth``, 5).
    hidden: width of the coupling networks (``f_width``, 64).
  """
  features: int
  num_steps: int = 5
  hidden: int = 64

  def setup(self):
    """Creates the steps and checks ``features``."""
    if self.features < 2 or self.features % 2:
      raise ValueError(f'LatentGlow needs an even features >= 2 (the '
                       f'coupling halves z); got {self.features}.')
    self.actnorms = [ScaledActNorm() for _ in range(self.num_steps)]
    self.linears = [FullLinear() for _ in range(self.num_steps)]
    self.couplings = [InterleavedCoupling(self.hidden)
                      for _ in range(self.num_steps)]

  @property
  def latent_dim(self) -> int:
    """Dimension of the latent (equal to the data's)."""
    return self.features

  def _check(self, x: jax.Array, name: str):
    if x.ndim != 2 or x.shape[-1] != self.features:
      raise ValueError(f'LatentGlow(features={self.features}) expects {name} '
                       f'of shape [B, {self.features}]; got {x.shape}.')

  def __call__(self, x: jax.Array):
    """Same as :meth:`forward` (``init`` calls it)."""
    return self.forward(x)

  def forward(self, x: jax.Array):
    """``(z, log|det dz/dx|)`` for ``[B, D]`` data."""
    self._check(x, 'x')
    logdet = jnp.zeros((x.shape[0],), x.dtype)
    for i in range(self.num_steps):
      for layer in (self.actnorms[i], self.linears[i], self.couplings[i]):
        x, ld = layer(x)
        logdet = logdet + ld
    return x, logdet

  def inverse(self, z: jax.Array) -> jax.Array:
    """``x`` with ``forward(x)[0] == z``."""
    self._check(z, 'z')
    for i in reversed(range(self.num_steps)):
      for layer in (self.couplings[i], self.linears[i], self.actnorms[i]):
        z, _ = layer(z, reverse=True)
    return z

