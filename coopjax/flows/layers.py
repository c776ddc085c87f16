"""Invertible building blocks shared by the dense and the multi-scale flow.

Every layer is a Flax Linen module whose single compact method is
``__call__(x, reverse=False) -> (y, logdet)``:

* ``reverse=False`` applies the data -> latent map ``y = f(x)`` and returns
  ``logdet = log|det df/dx|`` per example, shape ``[B]``;
* ``reverse=True`` applies ``x = f^{-1}(y)`` and returns the log-determinant of
  that inverse map, ``-log|det df/dx|``.

Layers act on the last axis and treat every axis between the batch and the
last one as spatial, so the same ``ActNorm`` / ``InvertibleLinear`` serve
vectors ``[B, D]`` and images ``[B, H, W, C]`` (where ``InvertibleLinear`` is
Glow's invertible 1x1 convolution).

All variables live in the ``'params'`` collection; there are no constants or
statistics collections, so ``{'params': params}`` is a flow's full state.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

# Added to the standard deviation in ActNorm's data-dependent initialisation.
ACTNORM_EPS = 1e-6
# Coupling scale is sigmoid(h + COUPLING_SCALE_OFFSET), as in Glow and the
# latent-flow prior.
COUPLING_SCALE_OFFSET = 2.0
# Full float32 for the C x C mixing matmuls: recent NVIDIA GPUs default to TF32,
# whose ~1e-3 relative error would show up in inverse(forward(x)).
_HIGHEST = jax.lax.Precision.HIGHEST


def normal_log_prob(z: jax.Array) -> jax.Array:
  """Log-density of a standard normal, summed over all but the first axis.

  Args:
    z: ``[B, ...]`` array.

  Returns:
    ``[B]`` log-densities in nats.
  """
  z = z.reshape(z.shape[0], -1)
  return -0.5 * jnp.sum(z**2, axis=-1) - 0.5 * z.shape[-1] * math.log(
      2 * math.pi)


def _spatial_size(x: jax.Array) -> int:
  """Number of positions a per-channel layer is applied at (1 for vectors)."""
  return math.prod(x.shape[1:-1])


class ActNorm(nn.Module):
  """Per-channel affine normalisation ``y = (x + bias) * exp(log_scale)``.

  Data-dependent initialisation: the parameter initialisers compute
  ``bias = -mean`` and ``log_scale = -log(std + 1e-6)`` over every axis but the
  last from the batch seen by ``init``, so that batch leaves the layer with
  zero mean and unit variance per channel. This is pure: it happens inside
  ``model.init(key, x_batch)``, which must therefore run the forward direction.
  """

  @nn.compact
  def __call__(self, x: jax.Array, reverse: bool = False):
    """Applies the layer; see the module docstring for the contract."""
    if reverse and not self.has_variable('params', 'bias'):
      raise ValueError(
          'ActNorm is initialised from data: create the variables with '
          'model.init(key, x_batch) (the forward, data -> latent direction), '
          'not through inverse() or sample().')
    axes = tuple(range(x.ndim - 1))
    bias = self.param('bias', lambda _: -jnp.mean(x, axis=axes))
    log_scale = self.param(
        'log_scale',
        lambda _: -jnp.log(jnp.std(x, axis=axes) + ACTNORM_EPS))
    logdet = jnp.sum(log_scale) * _spatial_size(x)
    logdet = jnp.full((x.shape[0],), logdet, x.dtype)
    if reverse:
      return x * jnp.exp(-log_scale) - bias, -logdet
    return (x + bias) * jnp.exp(log_scale), logdet


def orthogonal_lu_init(key: jax.Array, size: int) -> jax.Array:
  """Packed LU factors of a random orthogonal matrix (no pivoting needed).

  Draws ``Q`` from the QR decomposition of a Gaussian matrix and factors it
  with partial pivoting, ``Q = P L U``. The matrix ``W = P^T Q S``, with
  ``S = diag(sign(diag U))``, is again orthogonal and equals ``L (U S)``, an
  LU decomposition without pivoting whose ``U S`` has a positive diagonal.

  Args:
    key: PRNG key.
    size: matrix size ``C``.

  Returns:
    ``[C, C]`` array holding ``L``'s strict lower triangle, ``U S``'s strict
    upper triangle and ``log|diag(U)|`` on the diagonal.
  """
  q, _ = jnp.linalg.qr(jax.random.normal(key, (size, size), jnp.float32))
  _, lower, upper = jax.scipy.linalg.lu(q)
  upper = upper * jnp.sign(jnp.diag(upper))[None, :]
  return (jnp.tril(lower, -1) + jnp.triu(upper, 1) +
          jnp.diag(jnp.log(jnp.diag(upper))))


class InvertibleLinear(nn.Module):
  """Invertible linear map on the last axis, ``y = x W^T`` with ``W = L U``.

  ``L`` is unit lower triangular and ``U`` upper triangular with diagonal
  ``exp(s)``, all stored in one packed ``[C, C]`` parameter ``lu``, so
  ``log|det W| = sum(s)`` exactly and ``det W > 0`` throughout training. It
  starts as a random orthogonal matrix (see :func:`orthogonal_lu_init`); no
  fixed permutation or sign constants are needed. On images it is Glow's
  invertible 1x1 convolution (log-det multiplied by ``H * W``).
  """

  @nn.compact
  def __call__(self, x: jax.Array, reverse: bool = False):
    """Applies the layer; see the module docstring for the contract."""
    size = x.shape[-1]
    lu = self.param('lu', orthogonal_lu_init, size)
    eye = jnp.eye(size, dtype=lu.dtype)
    lower = jnp.tril(lu, -1) + eye
    upper = jnp.triu(lu, 1) + jnp.diag(jnp.exp(jnp.diag(lu)))
    logdet = jnp.sum(jnp.diag(lu)) * _spatial_size(x)
    logdet = jnp.full((x.shape[0],), logdet, x.dtype)
    if reverse:
      inv_lower = jax.scipy.linalg.solve_triangular(
          lower, eye, lower=True, unit_diagonal=True)
      w_inv = jax.scipy.linalg.solve_triangular(upper, inv_lower, lower=False)
      return jnp.matmul(x, w_inv.T, precision=_HIGHEST), -logdet
    weight = jnp.matmul(lower, upper, precision=_HIGHEST)
    return jnp.matmul(x, weight.T, precision=_HIGHEST), logdet


class MLPConditioner(nn.Module):
  """Two hidden ReLU layers, then a zero-initialised output layer.

  Attributes:
    hidden: width of the hidden layers.
    out_features: output width.
  """
  hidden: int
  out_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps ``[B, D]`` to ``[B, out_features]`` (zero at initialisation)."""
    x = nn.relu(nn.Dense(self.hidden)(x))
    x = nn.relu(nn.Dense(self.hidden)(x))
    return nn.Dense(self.out_features, kernel_init=nn.initializers.zeros)(x)


class ConvConditioner(nn.Module):
  """Glow's coupling network: 3x3 conv, ReLU, 1x1 conv, ReLU, zero 3x3 conv.

  Attributes:
    hidden: channels of the hidden layers.
    out_features: output channels.
  """
  hidden: int
  out_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps ``[B, H, W, C]`` to ``[B, H, W, out_features]`` (zero at init)."""
    x = nn.relu(nn.Conv(self.hidden, (3, 3))(x))
    x = nn.relu(nn.Conv(self.hidden, (1, 1))(x))
    return nn.Conv(self.out_features, (3, 3),
                   kernel_init=nn.initializers.zeros)(x)


class AffineCoupling(nn.Module):
  """Affine coupling: the first half of the channels transforms the second.

  With ``[x_a, x_b]`` the split of the last axis (``x_a`` has ``C // 2``
  channels) and ``shift, h = net(x_a)``::

      y_a = x_a,   y_b = (x_b + shift) * sigmoid(h + 2)

  and ``log|det| = sum log sigmoid(h + 2)``. The network's last layer is
  zero-initialised, so at initialisation ``shift = 0`` and the scale is the
  constant ``sigmoid(2) ~ 0.881`` (a fixed contraction, not the identity).

  Attributes:
    hidden: width of the conditioner network.
    conv: use :class:`ConvConditioner` (images) instead of
      :class:`MLPConditioner` (vectors).
  """
  hidden: int
  conv: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, reverse: bool = False):
    """Applies the layer; see the module docstring for the contract."""
    split = x.shape[-1] // 2
    x_a, x_b = x[..., :split], x[..., split:]
    net_cls = ConvConditioner if self.conv else MLPConditioner
    out = net_cls(self.hidden, 2 * x_b.shape[-1], name='net')(x_a)
    shift, pre_scale = jnp.split(out, 2, axis=-1)
    log_scale = jax.nn.log_sigmoid(pre_scale + COUPLING_SCALE_OFFSET)
    logdet = jnp.sum(log_scale.reshape(x.shape[0], -1), axis=-1)
    if reverse:
      x_b = x_b * jnp.exp(-log_scale) - shift
      return jnp.concatenate([x_a, x_b], axis=-1), -logdet
    x_b = (x_b + shift) * jnp.exp(log_scale)
    return jnp.concatenate([x_a, x_b], axis=-1), logdet


class FlowStep(nn.Module):
  """One flow step: ActNorm -> InvertibleLinear -> AffineCoupling.

  Attributes:
    hidden: width of the coupling network.
    conv: convolutional coupling network (images) instead of an MLP.
  """
  hidden: int
  conv: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, reverse: bool = False):
    """Applies the step (or its inverse, in reverse order of layers)."""
    layers = [
        ActNorm(name='actnorm'),
        InvertibleLinear(name='linear'),
        AffineCoupling(self.hidden, self.conv, name='coupling'),
    ]
    if reverse:
      layers = layers[::-1]
    logdet = jnp.zeros((x.shape[0],), x.dtype)
    for layer in layers:
      x, layer_logdet = layer(x, reverse)
      logdet = logdet + layer_logdet
    return x, logdet


class FlowSampling:
  """``log_prob`` and ``sample`` for a flow with ``forward``, ``inverse`` and
  ``latent_dim`` (mixed into :class:`DenseFlow` and :class:`GlowFlow`)."""

  def log_prob(self, x: jax.Array) -> jax.Array:
    """Exact log-density ``log N(f(x); 0, I) + log|det df/dx|``, [B], nats."""
    z, logdet = self.forward(x)
    return normal_log_prob(z) + logdet

  def sample(self, key: jax.Array, n: int,
             temperature: float = 1.0) -> jax.Array:
    """Draws ``n`` samples ``f^{-1}(temperature * eps)``, ``eps ~ N(0, I)``.

    Args:
      key: PRNG key.
      n: number of samples (static under jit).
      temperature: standard deviation of the base draw (1 samples the model).

    Returns:
      ``n`` samples shaped like the data.
    """
    z = temperature * jax.random.normal(key, (n, self.latent_dim))
    return self.inverse(z)
