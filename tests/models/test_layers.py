"""coopjax.models.layers: spectral norm, attention, group norm."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax.models import layers

from helpers.networks import KEY, normal, perturbed


def test_spectral_norm_converges_to_the_largest_singular_value():
  conv = layers.SNConv(6, 3)
  x = normal((2, 5, 5, 4), 101)
  variables = jax.jit(conv.init)(KEY, x)
  kernel = variables['params']['kernel'] * 5.0
  params = {'kernel': kernel, 'bias': jnp.zeros(6)}

  @jax.jit
  def iterate(stats):
    def step(stats, _):
      y, updates = conv.apply({'params': params, 'batch_stats': stats}, x,
                              True, mutable=['batch_stats'])
      return updates['batch_stats'], y
    stats, ys = jax.lax.scan(step, stats, None, length=200)
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


def test_spectral_norm_modes_are_pytorchs():
  """Eval mode divides by u^T W v of the stored u, v; training mode first
  takes one power iteration (the same as :func:`layers.power_iteration`) and
  stores it; gradients treat u, v as constants."""
  dense = layers.SNDense(3)
  x = normal((4, 5), 104)
  variables = dense.init(KEY, x)
  w = np.asarray(variables['params']['kernel'], np.float64)  # [in, out]
  b = np.asarray(variables['params']['bias'])
  stats = {'u': normal((3,), 105), 'v': normal((5,), 106)}
  stats = {k: v / np.linalg.norm(v) for k, v in stats.items()}
  run = lambda s, train: dense.apply(
      {'params': variables['params'], 'batch_stats': s}, x, train,
      mutable=['batch_stats'])
  y, same = run(stats, False)
  jax.tree_util.tree_map(np.testing.assert_array_equal, same['batch_stats'],
                         stats)
  np.testing.assert_allclose(y, x @ (w / (stats['v'] @ w @ stats['u'])) + b,
                             rtol=1e-5)
  y, new = run(stats, True)
  v = w @ stats['u']
  v /= np.linalg.norm(v)
  u = v @ w
  u /= np.linalg.norm(u)
  np.testing.assert_allclose(new['batch_stats']['u'], u, rtol=1e-5)
  np.testing.assert_allclose(new['batch_stats']['v'], v, rtol=1e-5)
  np.testing.assert_allclose(y, x @ (w / (v @ w @ u)) + b, rtol=1e-5)
  pure = layers.power_iteration(variables['params'], stats)
  jax.tree_util.tree_map(np.testing.assert_array_equal, pure,
                         new['batch_stats'])
  # the gradient of sigma = u^T W v in W is u v^T, u and v held fixed
  grad = jax.grad(lambda k: layers.sn_sigma(k, stats['u'], stats['v']))(
      jnp.asarray(w, jnp.float32))
  np.testing.assert_allclose(grad, np.outer(stats['v'], stats['u']),
                             rtol=1e-5)
  # fresh statistics are one power iteration: sigma > 0 before any update
  fresh = variables['batch_stats']
  assert float(layers.sn_sigma(variables['params']['kernel'], fresh['u'],
                               fresh['v'])) > 0


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
  assert isinstance(layers.group_norm(8), layers.GroupNorm)


@pytest.mark.parametrize('shape,groups', [((3, 5, 4, 64), 32), ((2, 7, 24), 8),
                                          ((2, 4, 4, 6), 6)])
def test_group_norm_equals_flax_with_gradients(shape, groups):
  # Values and gradients (input, scale, bias) against flax's GroupNorm with
  # two-pass variance, at non-trivial scale and bias and a non-linear loss.
  x = normal(shape, 41) * 3.0 + 1.5
  ours = layers.GroupNorm(groups, epsilon=1e-6)
  ref = nn.GroupNorm(groups, epsilon=1e-6, use_fast_variance=False)
  c = shape[-1]
  params = {'params': {'scale': 1.0 + normal((c,), 42),
                       'bias': normal((c,), 43)}}
  w = normal(shape, 44)

  def loss(module):
    return lambda p, x, w=w: jnp.sum(jnp.sin(module.apply(p, x)) * w)

  assert jax.tree_util.tree_structure(ours.init(jax.random.key(0), x)) == (
      jax.tree_util.tree_structure(ref.init(jax.random.key(0), x)))
  np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x),
                             rtol=1e-5, atol=1e-5)
  got = jax.jit(jax.grad(loss(ours), argnums=(0, 1)))(params, x)
  want = jax.jit(jax.grad(loss(ref), argnums=(0, 1)))(params, x)
  for g, r in zip(jax.tree_util.tree_leaves(got),
                  jax.tree_util.tree_leaves(want)):
    np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)
  # per-example gradients under vmap (as in the train step) agree too
  per = jax.vmap(jax.grad(loss(ours), argnums=1), in_axes=(None, 0, 0))(
      params, x[:, None], w[:, None])
  np.testing.assert_allclose(per[:, 0], got[1], rtol=1e-4, atol=1e-4)


def test_group_norm_bfloat16_returns_bfloat16_from_float32_statistics():
  # bf16 inputs of mean 100 and spread 3: statistics in bf16 would lose
  # the spread; ours match float32 GroupNorm up to bf16's output rounding.
  x = (normal((2, 4, 4, 64), 45) * 3.0 + 100.0).astype(jnp.bfloat16)
  gn = layers.GroupNorm(32, dtype=jnp.bfloat16)
  p = gn.init(jax.random.key(0), x)
  y = gn.apply(p, x)
  assert y.dtype == jnp.bfloat16
  ref = nn.GroupNorm(32, epsilon=1e-6, use_fast_variance=False).apply(
      p, x.astype(jnp.float32))
  np.testing.assert_allclose(np.asarray(y, np.float32), ref, atol=0.02)
  with pytest.raises(ValueError, match='do not split into 32 groups'):
    layers.GroupNorm(32).init(jax.random.key(0), x[..., :40])


def test_conv_same_gradients_equal_lax_inside_a_scan():
  # The canonical-layout VJP (the default on the CPU) against jax.lax's own
  # rule, for 3x3 and 1x1 kernels, inside a lax.scan as in the networks.
  x = normal((2, 6, 6, 4), 31)
  kernels = {3: normal((2, 3, 3, 4, 4), 32) * 0.3,
             1: normal((2, 1, 1, 4, 4), 33) * 0.3}

  def loss(canonical, ks, x):
    body = lambda h, k: (jnp.tanh(layers.conv_same(h, k, canonical)), None)
    return jnp.sum(jax.lax.scan(body, x, ks)[0] * x)

  for size, ks in kernels.items():
    grads = [jax.jit(jax.grad(lambda ks, x, c=c: loss(c, ks, x), (0, 1)))(
        ks, x) for c in (True, False)]
    for ours, ref in zip(*grads):
      assert np.abs(np.asarray(ref)).max() > 1e-2
      np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5,
                                 err_msg=f'{size}x{size}')
  conv = layers.Conv(5, 3)
  params = perturbed(conv.init(KEY, x))
  reference = nn.Conv(5, (3, 3), padding='SAME')
  np.testing.assert_allclose(conv.apply(params, x), reference.apply(params, x),
                             rtol=1e-5, atol=1e-5)


def test_conv_same_under_shard_map_sums_a_replicated_kernels_gradient():
  # Batch sharded over 4 devices, kernel replicated: the canonical VJP
  # gives the kernel's gradient summed over the devices, as jax.lax does.
  from jax.sharding import PartitionSpec as P  # pylint: disable=g-import-not-at-top
  from coopjax.trainer import parallel  # pylint: disable=g-import-not-at-top
  mesh = parallel.make_mesh(jax.devices()[:4])
  x, k = normal((4, 5, 5, 3), 34), normal((3, 3, 3, 2), 35) * 0.3

  def grads(canonical):
    def per_device(x, k):
      loss = lambda x, k: jnp.sum(jnp.tanh(layers.conv_same(x, k, canonical)))
      dx, dk = jax.grad(loss, (0, 1))(x, k)
      return dx, jax.lax.psum(dk, 'data')
    return jax.jit(jax.shard_map(per_device, mesh=mesh,
                                 in_specs=(P('data'), P()),
                                 out_specs=(P('data'), P())))(x, k)

  for ours, ref in zip(grads(True), grads(False)):
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
