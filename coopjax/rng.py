"""Per-example randomness, so results do not depend on how a batch is sharded.

Example ``i`` of a global batch draws from ``fold_in(key, i)``; a device holding
examples ``[start, start + n)`` derives exactly the keys the whole batch would.
"""

from typing import Any, Tuple

import jax
import jax.numpy as jnp


def example_keys(key: jax.Array, start: Any, num: int) -> jax.Array:
  """Per-example keys ``fold_in(key, start + i)`` for ``i < num``."""
  idx = jnp.asarray(start, jnp.uint32) + jnp.arange(num, dtype=jnp.uint32)
  return jax.vmap(jax.random.fold_in, (None, 0))(key, idx)


def split_each(keys: jax.Array, num: int) -> Tuple[jax.Array, ...]:
  """Splits each of ``[B]`` keys into ``num``; returns ``num`` arrays of ``[B]``."""
  split = jax.vmap(lambda k: jax.random.split(k, num))(keys)
  return tuple(split[:, i] for i in range(num))


def per_example_normal(keys: jax.Array, shape, dtype=jnp.float32):
  """One standard normal draw of ``shape`` per key: ``[B, *shape]``."""
  return jax.vmap(lambda k: jax.random.normal(k, shape, dtype))(keys)


def task_key(seed: int, step: int, salt: int) -> jax.Array:
  """The key of a post-training task: ``fold_in(key(seed + salt), step)``.

  The same run, checkpoint and task (``salt`` tells tasks apart) always draws
  the same numbers; a later checkpoint draws new ones.
  """
  return jax.random.fold_in(jax.random.key(seed + salt), int(step))
