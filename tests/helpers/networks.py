"""Inputs shared by the image-network tests: cheap keys, shapes, random params."""

import jax
import jax.numpy as jnp
import numpy as np

KEY = jax.random.key(0, impl='unsafe_rbg')  # cheap to compile; init only
SHAPE = (3, 8, 8, 2)
LOGSNR = jnp.asarray([9.8, 1.2, -5.1])
LEVELS = jnp.asarray([9.8, 2.69, 1.2, 0.14, -0.88, -2.17])
LEVEL_IDX = jnp.asarray([5, 0, 3])
LABELS = jnp.asarray([1, 2, 3])
NULL = jnp.zeros(3, jnp.int32)


def normal(shape, seed):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def perturbed(params, scale=0.3):
  """Random parameters, so that zero-initialised layers do something."""
  leaves, tree = jax.tree_util.tree_flatten(jax.device_get(params))
  return tree.unflatten([a + scale * normal(a.shape, i)
                         for i, a in enumerate(leaves)])
