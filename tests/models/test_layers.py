"""coopjax.models.layers: spectral norm, attention, group norm."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from coopjax.models import layers

from helpers.networks import KEY, normal, perturbed


def test_spectral_norm_converges_to_the_largest_singular_value():
  conv = layers.SNConv(6, 3)
  x = normal((2, 5, 5, 4), 101)
  variables = jax.jit(conv.init)(KEY, x)
  kernel = variables['params']['Conv_0']['kernel'] * 5.0
  params = {'Conv_0': {'kernel': kernel, 'bias': jnp.zeros(6)}}

  @jax.jit
  def iterate(stats):
    def step(stats, _):
      y, updates = conv.apply({'params': params, 'batch_stats': stats}, x,
                              True, mutable=['batch_stats'])
      return updates['batch_stats'], y
    stats, ys = jax.lax.scan(step, stats, None, length=30)
    return ys[-1]

  y = iterate(variables['batch_stats'])
  sigma = np.linalg.svd(np.asarray(kernel).reshape(-1, 6), compute_uv=False)[0]
  normalised = np.asarray(kernel) / sigma
  # the normalised kernel's largest singular value is 1 ...
  np.testing.assert_allclose(
      np.linalg.svd(normalised.reshape(-1, 6), compute_uv=False)[0], 1.0,
      rtol=1e-5)
  # ... and the layer applies it
  direct = jax.lax.conv_general_dilated(
      x, normalised, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  np.testing.assert_allclose(y, direct, rtol=1e-3, atol=1e-4)


def test_attention_block_starts_as_identity_and_mixes_pixels():
  block = layers.AttentionBlock()
  x = normal((2, 4, 4, 8), 103)
  variables = jax.jit(block.init)(KEY, x)
  trained = {'params': perturbed(variables['params'])}
  x2 = x.copy()
  x2[:, 0, 0] += 1.0
  fresh, y, y2 = jax.jit(lambda v, t: (block.apply(v, x), block.apply(t, x),
                                       block.apply(t, x2)))(variables, trained)
  np.testing.assert_array_equal(fresh, x)
  # changing one pixel changes the output at every pixel
  assert np.all(np.abs(np.asarray(y2 - y)).max(axis=-1) > 1e-6)


def test_num_groups_divides():
  assert layers.num_groups(64) == 32 and layers.num_groups(24) == 24
  assert layers.num_groups(48) == 24 and layers.num_groups(7) == 7
  assert all(c % layers.num_groups(c) == 0 for c in range(1, 200))
  assert isinstance(layers.group_norm(8), nn.GroupNorm)
