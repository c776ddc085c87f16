"""Building blocks shared by the networks: spectrally normalised layers,
GroupNorm, self-attention and per-example dropout.

Spectral normalisation wraps a layer in ``flax.linen.SpectralNorm``; its power
iteration state (``u`` and ``sigma``) lives in the ``'batch_stats'`` collection
and advances only when ``update_stats=True``. A conv kernel ``[kh, kw, in,
out]`` is normalised as the ``[kh * kw * in, out]`` matrix.

Every layer takes a compute ``dtype`` (``None``: that of the inputs); parameters
stay float32.
"""

from typing import Any, Optional, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

DTYPES = ('float32', 'bfloat16')

# PyTorch's default Linear/Conv initialisation (variance 1 / (3 fan_in)), which
# the reference networks use.
torch_default_init = nn.initializers.variance_scaling(1 / 3, 'fan_in',
                                                      'uniform')


def lrelu(x: jax.Array) -> jax.Array:
  """Leaky ReLU with slope 0.2, the EBMs' activation."""
  return nn.leaky_relu(x, negative_slope=0.2)


def compute_dtype(dtype: Union[str, Any]) -> jnp.dtype:
  """The compute dtype named by ``config.model.dtype``.

  Args:
    dtype: 'float32', 'bfloat16' or a numpy/JAX dtype of either.

  Raises:
    ValueError: any other dtype.
  """
  try:
    resolved = jnp.dtype(dtype)
  except TypeError:
    resolved = None
  if resolved is None or resolved.name not in DTYPES:
    raise ValueError(f'config.model.dtype={dtype!r} is not supported; '
                     f'expected one of {DTYPES}.')
  return resolved


def model_labels(label: Optional[jax.Array], n: int, num_classes: int,
                 owner: str) -> Optional[jax.Array]:
  """Checked ``[n]`` int32 model labels for a class embedding (0 = null).

  Args:
    label: ``[n]`` model labels, or None.
    n: number of rows the labels must match.
    num_classes: classes of the network (0: unconditional).
    owner: the network's name, for error messages.

  Returns:
    None for an unconditional network; the null label 0 everywhere when a
    conditional network gets no label.

  Raises:
    ValueError: a label for an unconditional network, or a wrong shape.
  """
  if not num_classes:
    if label is not None:
      raise ValueError(f'{owner} got a label but num_classes=0; set '
                       'config.model.num_classes > 0 to condition on labels.')
    return None
  if label is None:
    return jnp.zeros((n,), jnp.int32)
  if jnp.shape(label) != (n,):
    raise ValueError(f'{owner}: label has shape {jnp.shape(label)}; expected '
                     f'({n},), one model label per example / noise level.')
  return jnp.asarray(label, jnp.int32)


def _normalised(layer: nn.Module, x: jax.Array, use_sn: bool,
                update_stats: bool) -> jax.Array:
  if not use_sn:
    return layer(x)
  return nn.SpectralNorm(layer)(x, update_stats=update_stats)


class SNDense(nn.Module):
  """A Dense layer, spectrally normalised with ``flax.linen.SpectralNorm``."""
  features: int
  use_sn: bool = True
  use_bias: bool = True
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, x: jax.Array, update_stats: bool = False) -> jax.Array:
    dense = nn.Dense(self.features, use_bias=self.use_bias, dtype=self.dtype,
                     kernel_init=torch_default_init)
    return _normalised(dense, x, self.use_sn, update_stats)


class SNConv(nn.Module):
  """A 'SAME' convolution, spectrally normalised like :class:`SNDense`."""
  features: int
  kernel_size: int = 3
  use_sn: bool = True
  use_bias: bool = True
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, x: jax.Array, update_stats: bool = False) -> jax.Array:
    conv = nn.Conv(self.features, (self.kernel_size, self.kernel_size),
                   padding='SAME', use_bias=self.use_bias, dtype=self.dtype,
                   kernel_init=torch_default_init)
    return _normalised(conv, x, self.use_sn, update_stats)


def num_groups(channels: int, max_groups: int = 32) -> int:
  """The largest divisor of ``channels`` not above ``max_groups``."""
  return max(g for g in range(1, min(channels, max_groups) + 1)
             if channels % g == 0)


def group_norm(channels: int, dtype: Optional[Any] = None) -> nn.GroupNorm:
  """GroupNorm with 32 groups, or fewer when ``channels`` is not a multiple."""
  return nn.GroupNorm(num_groups(channels), epsilon=1e-6, dtype=dtype)


def example_dropout(x: jax.Array, rate: float, keys: jax.Array) -> jax.Array:
  """Inverted dropout with one key per example (``keys`` ``[B]``).

  Example ``i``'s mask depends only on ``keys[i]``, so a sharded batch drops
  exactly what the whole batch would.
  """
  if rate <= 0.0:
    return x
  keep = jax.vmap(lambda k: jax.random.bernoulli(k, 1.0 - rate, x.shape[1:]))(
      keys)
  return jnp.where(keep, x / (1.0 - rate), 0).astype(x.dtype)


class AttentionBlock(nn.Module):
  """Single-head self-attention over the pixels, residual, zero-initialised
  output projection (the block starts as the identity)."""
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    y = group_norm(c, self.dtype)(x)
    q, k, v = jnp.split(nn.Dense(3 * c, dtype=self.dtype,
                                 kernel_init=torch_default_init)(y), 3, axis=-1)
    q, k, v = (a.reshape(b, h * w, c) for a in (q, k, v))
    logits = jnp.einsum('bqc,bkc->bqk', q, k).astype(jnp.float32) * c**-0.5
    weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    y = jnp.einsum('bqk,bkc->bqc', weights, v).reshape(b, h, w, c)
    y = nn.Dense(c, dtype=self.dtype, kernel_init=nn.initializers.zeros)(y)
    return x + y
