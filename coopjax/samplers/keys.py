"""PRNG keys as the samplers accept them: typed or legacy, one or a batch.

JAX has two key kinds: typed keys from :func:`jax.random.key` (dtype
``key<fry>``, shape ``[]`` for one key) and legacy ``uint32`` key data from
:func:`jax.random.PRNGKey` (shape ``[2]`` for one key with the default
threefry implementation). Both, and batches of either (``jax.random.split``
of either), are accepted; everything inside the samplers works on typed keys.
"""

from __future__ import annotations

from typing import Any, Tuple

import jax
import jax.numpy as jnp
import numpy as np


def _legacy_key_size() -> int:
  """Trailing size of one legacy key for the default PRNG implementation."""
  return jax.random.key_data(jax.random.key(0)).shape[-1]


def as_keys(key: Any, name: str = 'key') -> jax.Array:
  """Returns ``key`` as typed PRNG keys, keeping its batch shape.

  Args:
    key: a typed key array (any shape) from :func:`jax.random.key`, or legacy
      ``uint32`` key data of shape ``[..., 2]`` from :func:`jax.random.PRNGKey`
      (the trailing 2 is the default threefry implementation's key size).
    name: the argument's name, for the error message.

  Returns:
    A typed key array of shape ``key.shape`` (typed) or ``key.shape[:-1]``
    (legacy). Wrapping legacy data draws the same numbers as the legacy key.

  Raises:
    TypeError: for anything else (an integer seed, float arrays, uint32 data
      whose trailing size is not the key size).
  """
  if isinstance(key, (jax.Array, np.ndarray)):
    dtype = key.dtype
    if jnp.issubdtype(dtype, jax.dtypes.prng_key):
      return key
    size = _legacy_key_size()
    if dtype == jnp.uint32 and key.ndim >= 1 and key.shape[-1] == size:
      return jax.random.wrap_key_data(key)
    what = f'an array of dtype {dtype} and shape {tuple(key.shape)}'
  else:
    what = f'a {type(key).__name__}'
  raise TypeError(
      f'{name} must be a PRNG key: a typed key from jax.random.key(seed), '
      f'legacy uint32 key data of shape [..., {_legacy_key_size()}] from '
      f'jax.random.PRNGKey(seed), or a batch of either (jax.random.split); '
      f'got {what}. For an integer seed s, pass jax.random.key(s).')


def check_key_batch(keys: jax.Array, batch_shape: Tuple[int, ...],
                    name: str = 'key') -> None:
  """Raises ``ValueError`` unless typed ``keys`` are one key or one per chain."""
  if keys.shape not in ((), tuple(batch_shape)):
    raise ValueError(
        f'{name} must be one key or one key per chain (batch shape '
        f'{tuple(batch_shape)}); got keys of batch shape {tuple(keys.shape)}.')


def split_each(keys: jax.Array, num: int) -> jax.Array:
  """Splits one typed key, or each of a batch, into ``num``: ``[num, *batch]``."""
  if keys.ndim == 0:
    return jax.random.split(keys, num)
  flat = jax.vmap(lambda k: jax.random.split(k, num))(keys.reshape(-1))
  return jnp.moveaxis(flat, 1, 0).reshape((num,) + keys.shape)
