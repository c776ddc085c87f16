"""coopjax.flows.dequantize: bins, the logit transform, bits per dimension."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from coopjax.flows import (bits_per_dim, inverse_logit_transform,
                           logit_transform, uniform_dequantize)


# XLA's backend optimisations cost more compile time than they save here.
_jit = functools.partial(jax.jit,
                         compiler_options={'xla_backend_optimization_level': 0})


def test_dequantisation_bins_logit_transform_and_bits_per_dim():
  levels = jnp.arange(256.0)
  x = jnp.tile(levels / 127.5 - 1.0, (4, 1))

  @_jit
  def transforms(key, x):
    y = uniform_dequantize(key, x)
    s, logdet = logit_transform(y, 0.05)
    slope = jax.vmap(jax.grad(lambda v: logit_transform(v[None], 0.05)[0][0]))
    log_slopes = jnp.log(slope(y.reshape(-1))).reshape(y.shape)
    return y, logdet, inverse_logit_transform(s, 0.05), log_slopes.sum(-1)

  y, logdet, y_rec, expected_logdet = transforms(jax.random.key(0), x)
  assert float(y.min()) >= -1.0 and float(y.max()) < 1.0
  np.testing.assert_array_equal(jnp.floor((y + 1.0) * 128.0),
                                jnp.broadcast_to(levels, y.shape))
  np.testing.assert_allclose(y_rec, y, atol=1e-5)
  np.testing.assert_allclose(logdet, expected_logdet, rtol=1e-5)
  # Without snapping, continuous values are re-binned: each lands uniformly in
  # its own bin of the 17 tiling [-1, 1) (the box edge 1 in the last one), so
  # a point mass at an edge is spread over that bin.
  v = jnp.concatenate([
      jax.random.uniform(jax.random.key(1), (2000,), minval=-1.0, maxval=1.0),
      jnp.full((1000,), -1.0), jnp.full((1000,), 1.0)])
  w = uniform_dequantize(jax.random.key(2), v, 17, snap=False)
  bin_of = lambda a: jnp.clip(jnp.floor((a + 1.0) * 8.5), 0, 16)
  np.testing.assert_array_equal(bin_of(w), bin_of(v))
  assert float(w.min()) >= -1.0 and float(w.max()) < 1.0
  edge = w[2000:3000]  # uniform on [-1, -1 + 2/17): mean and sd
  np.testing.assert_allclose(float(edge.mean()), -1.0 + 1.0 / 17.0, atol=0.005)
  np.testing.assert_allclose(float(edge.std()), (2.0 / 17.0) / math.sqrt(12.0),
                             rtol=0.05)
  # Data on the 17 levels land in the same bins either way.
  on_grid = jnp.arange(17.0) / 8.0 - 1.0
  np.testing.assert_array_equal(
      bin_of(uniform_dequantize(jax.random.key(3), on_grid, 17, snap=False)),
      bin_of(uniform_dequantize(jax.random.key(3), on_grid, 17)))
  # A uniform density on [-1, 1]^D (log p = -D log 2) is exactly 8 bits/dim.
  np.testing.assert_allclose(bits_per_dim(-10 * math.log(2.0), 10), 8.0)
