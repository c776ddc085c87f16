"""The data-parallel train step: 4 fake devices give the single-device result."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from coopjax import cdrl
from coopjax.cdrl import schedules
from coopjax.trainer import parallel, precompile
from coopjax.trainer import state as ts
from coopjax.models.mlp import MLPEnergy, MLPInitializer

from helpers.trainer import lowerings_of


def tiny_setup():
  levels = schedules.make_levels(schedules.cosine_abar(), 2e-3, 'inv_sigma0')
  model = cdrl.CDRLModel(MLPEnergy(width=8, mults=(1, 2), temb_dim=16),
                         MLPInitializer(width=32, temb_dim=16), levels, 3)
  # SGD: the update is linear in the all-reduced gradient. (Adam divides
  # near-zero gradients by their own magnitude, which turns reduction-order
  # rounding into visible differences that say nothing about sharding.)
  optimizers = {'ebm': optax.sgd(0.05), 'init': optax.sgd(0.05)}
  x, ls = jnp.zeros((2, 2)), jnp.zeros(2)
  ev = model.ebm.init(jax.random.key(0), x, ls)
  iv = model.initializer.init(jax.random.key(1), x, ls)
  state = ts.create({'ebm': ev['params'], 'init': iv['params']},
                    {'ebm': ev['batch_stats']}, optimizers)
  grads_fn = lambda p, s, xb, k, step: cdrl.loss_and_grads(model, p, s, xb, k)
  return state, grads_fn, optimizers


def run_steps(devices, batches):
  state, grads_fn, optimizers = tiny_setup()
  mesh = parallel.make_mesh(devices)
  step = parallel.make_train_step(grads_fn, optimizers, 0.99, mesh)
  state = parallel.put_replicated(state, mesh)
  for b in batches:
    state, metrics = step(state, parallel.put_batch(b, mesh),
                          jax.random.key(7))
  return jax.device_get(state), jax.device_get(metrics)


@pytest.mark.slow
def test_sharded_step_equals_single_device_step():
  assert jax.device_count() >= 4, 'conftest sets 4 fake CPU devices'
  rng = np.random.default_rng(0)
  batches = [rng.uniform(-8, 8, (16, 2)).astype(np.float32) for _ in range(3)]
  one, m1 = run_steps(jax.devices()[:1], batches)
  four, m4 = run_steps(jax.devices()[:4], batches)
  assert int(one.step) == int(four.step) == 3
  # Only the order of floating-point reductions differs.
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  jax.tree_util.tree_map(close, one.params, four.params)
  jax.tree_util.tree_map(close, one.ema, four.ema)
  jax.tree_util.tree_map(close, one.stats, four.stats)
  np.testing.assert_allclose(m1['ebm_loss'], m4['ebm_loss'], rtol=1e-4,
                             atol=1e-7)
  # And the step did something.
  fresh, _, _ = tiny_setup()
  moved = jax.tree_util.tree_map(lambda a, b: float(np.max(np.abs(a - b))),
                                 fresh.params, one.params)
  assert max(jax.tree_util.tree_leaves(moved)) > 1e-4


@pytest.mark.slow
def test_nonfinite_step_keeps_parameters():
  state, grads_fn, optimizers = tiny_setup()
  mesh = parallel.make_mesh(jax.devices()[:2])
  step = parallel.make_train_step(grads_fn, optimizers, 0.99, mesh)
  before = jax.device_get(state)
  bad = np.full((8, 2), np.nan, np.float32)
  new, metrics = step(parallel.put_replicated(state, mesh),
                      parallel.put_batch(bad, mesh), jax.random.key(0))
  assert not bool(metrics['finite'])
  assert int(new.step) == 1
  jax.tree_util.tree_map(np.testing.assert_array_equal, before.params,
                         jax.device_get(new.params))


def test_batch_must_divide_over_devices():
  mesh = parallel.make_mesh(jax.devices()[:4])
  with pytest.raises(ValueError, match='not divisible by the 4 devices'):
    parallel.check_batch_size(10, mesh)


def quadratic_grads_fn(params, stats, batch, keys, step):
  """A cheap stand-in for an algorithm: least squares, and statistics that
  follow the batch (like running moments), so a NaN batch poisons them."""
  del keys, step
  x = batch

  def loss(p):
    return jnp.mean((x @ p['w'] + p['b'] - 1.0) ** 2)

  value, g = jax.value_and_grad(loss)(params['net'])
  new_stats = {'net': {'mean': 0.5 * stats['net']['mean'] +
                               0.5 * jnp.mean(x, axis=0)}}
  return {'net': g}, new_stats, {'loss': value}


def test_nonfinite_step_with_adam_keeps_the_whole_state():
  # Adam has state (moments, count), and the EMA and the statistics move
  # every step: a NaN batch must leave all of them exactly as they were.
  optimizers = {'net': ts.make_optimizer({'lr': 1e-2, 'warmup': 0})}
  state = ts.create({'net': {'w': jnp.array([0.5, -0.3]), 'b': jnp.zeros(())}},
                    {'net': {'mean': jnp.zeros(2)}}, optimizers)
  mesh = parallel.make_mesh(jax.devices()[:2])
  step = parallel.make_train_step(quadratic_grads_fn, optimizers, 0.99, mesh)
  good = np.random.default_rng(0).uniform(-8, 8, (8, 2)).astype(np.float32)
  state, metrics = step(parallel.put_replicated(state, mesh),
                        parallel.put_batch(good, mesh), jax.random.key(0))
  assert bool(metrics['finite'])
  before = jax.device_get(state)
  bad = good.copy()
  bad[3, 1] = np.nan
  new, metrics = step(state, parallel.put_batch(bad, mesh), jax.random.key(0))
  assert not bool(metrics['finite'])
  new = jax.device_get(new)
  assert int(before.step) == 1 and int(new.step) == 2
  for part in ('params', 'opt_state', 'ema', 'stats'):
    jax.tree_util.tree_map(np.testing.assert_array_equal, getattr(before, part),
                           getattr(new, part))
  # and a good step after it does move every part
  newer, _ = step(parallel.put_replicated(new, mesh),
                  parallel.put_batch(good, mesh), jax.random.key(0))
  newer = jax.device_get(newer)
  for part in ('params', 'opt_state', 'ema', 'stats'):
    diff = jax.tree_util.tree_map(
        lambda a, b: float(np.max(np.abs(np.asarray(a, np.float64) -
                                         np.asarray(b, np.float64)))),
        getattr(new, part), getattr(newer, part))
    assert max(jax.tree_util.tree_leaves(diff)) > 0, part


def test_quadratic_step_on_two_devices_equals_one_device():
  # Under shard_map the gradient w.r.t. replicated parameters must be the
  # mean of the devices' gradients, not their sum.
  optimizers = {'net': optax.sgd(0.1)}
  batch = np.random.default_rng(1).uniform(-2, 2, (8, 2)).astype(np.float32)
  results = []
  for n in (1, 2):
    state = ts.create({'net': {'w': jnp.array([0.5, -0.3]), 'b': jnp.zeros(())}},
                      {'net': {'mean': jnp.zeros(2)}}, optimizers)
    mesh = parallel.make_mesh(jax.devices()[:n])
    step = parallel.make_train_step(quadratic_grads_fn, optimizers, 0.9, mesh)
    new, metrics = step(parallel.put_replicated(state, mesh),
                        parallel.put_batch(batch, mesh), jax.random.key(0))
    results.append((jax.device_get(new), jax.device_get(metrics)))
  (one, m1), (two, m2) = results
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  jax.tree_util.tree_map(close, one.params, two.params)
  jax.tree_util.tree_map(close, one.stats, two.stats)
  close(m1['loss'], m2['loss'])
  # the reference: plain SGD on the whole batch
  x = batch
  w, b = np.array([0.5, -0.3]), 0.0
  r = x @ w + b - 1.0
  np.testing.assert_allclose(one.params['net']['w'],
                             w - 0.1 * 2 * np.mean(r[:, None] * x, 0),
                             rtol=1e-5)


def test_sharded_sampler_splits_samples_like_one_device():
  def make_sampler(n):
    def run(state, key, start):
      keys = jax.vmap(jax.random.fold_in, (None, 0))(
          key, start + jnp.arange(n))
      x = jax.vmap(lambda k: jax.random.normal(k, (3,)))(keys) + state
      return x, {'index': start + jnp.arange(n)}
    return run

  key, state = jax.random.key(4), jnp.float32(2.0)
  one = make_sampler(8)(state, key, 4)
  mesh = parallel.make_mesh(jax.devices()[:4])
  sharded = jax.jit(parallel.shard_sampler(make_sampler, 8, mesh))
  four = sharded(state, key, 4)
  np.testing.assert_allclose(four[0], one[0], rtol=1e-6)
  np.testing.assert_array_equal(four[1]['index'], np.arange(4, 12))
  assert [s.data.shape[0] for s in four[0].addressable_shards] == [2] * 4
  with pytest.raises(ValueError, match='multiple of 4'):
    parallel.shard_sampler(make_sampler, 6, mesh)
  # samples per call: min(num, chunk) rounded up to the device count
  assert parallel.sample_chunk(10, 100, mesh) == 12
  assert parallel.sample_chunk(100, 7, mesh) == 8
  assert parallel.sample_chunk(8, 8, mesh) == 8
  assert parallel.sample_chunk(5, 8, parallel.make_mesh(jax.devices()[:1])) == 5


def test_placement_and_host_helpers():
  mesh = parallel.make_mesh(jax.devices()[:4])
  tree = {'a': np.arange(8.0, dtype=np.float32), 'b': np.float32(3.0)}
  placed = parallel.put_replicated(tree, mesh)
  for leaf in jax.tree_util.tree_leaves(placed):
    assert leaf.sharding.is_equivalent_to(
        jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()),
        leaf.ndim)
    assert len(leaf.addressable_shards) == 4
  batch = parallel.put_batch({'x': tree['a']}, mesh)
  assert [s.data.shape for s in batch['x'].addressable_shards] == [(2,)] * 4
  host = parallel.to_host(placed)
  assert isinstance(host['a'], np.ndarray)
  np.testing.assert_array_equal(host['a'], tree['a'])
  out = parallel.host_metrics({'loss': jnp.float32(1.5), 'ok': jnp.bool_(1)})
  assert out == {'loss': 1.5, 'ok': 1.0}
  assert all(type(v) is float for v in out.values())


def test_replicated_state_is_create_on_every_device_in_one_program():
  optimizers = {'net': ts.make_optimizer({'lr': 1e-2, 'warmup': 0})}
  # Shapes no other test uses: an op-by-op build would lower new programs.
  params = {'net': {'w': jnp.linspace(-1, 1, 21).reshape(3, 7),
                    'b': jnp.arange(11.0)}}
  stats = {'net': {'mean': jnp.ones(2)}}
  mesh = parallel.make_mesh(jax.devices()[:4])
  with lowerings_of('reshape') as eager, lowerings_of('copy') as copies:
    state = parallel.replicated_state(params, stats, optimizers, mesh)
  assert not eager and not copies  # no op-by-op ravel or EMA copy
  want = jax.device_get(ts.create(params, stats, optimizers))
  jax.tree_util.tree_map(np.testing.assert_array_equal,
                         jax.device_get(state), want)
  for leaf in jax.tree_util.tree_leaves(state):
    assert leaf.sharding.is_equivalent_to(
        jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()),
        leaf.ndim)
    assert len(leaf.addressable_shards) == 4


@pytest.mark.parametrize('devices', [1, 4])
def test_precompiled_step_is_not_compiled_again(devices):
  # The step compiled in the background from abstract shapes (as the trainer
  # does while it initialises) is the one the first real call runs.
  state, grads_fn, optimizers = tiny_setup()
  mesh = parallel.make_mesh(jax.devices()[:devices])
  step = parallel.make_train_step(grads_fn, optimizers, 0.99, mesh)
  batch = np.linspace(-4, 4, 16, dtype=np.float32).reshape(8, 2)
  abstract = jax.tree_util.tree_map(
      lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype,
                                     sharding=parallel.replicated(mesh)),
      state)
  key = jax.random.key(7)
  with lowerings_of('train_step') as background:
    precompile.start(step, abstract, precompile.abstract_batch(batch, 8, mesh),
                     key).join()
  with lowerings_of('train_step') as first_call:
    new, _ = step(parallel.put_replicated(state, mesh),
                  parallel.put_batch(batch, mesh), key)
  assert background == ['coopjax-precompile'] and not first_call
  assert int(new.step) == 1


def test_a_metric_beyond_its_limit_keeps_the_state_like_a_nonfinite_one():
  # A finite divergence: the loss is finite but beyond its bound, so the step
  # is refused exactly as a NaN one; a bound above it lets the same step in.
  optimizers = {'net': ts.make_optimizer({'lr': 1e-2, 'warmup': 0})}
  state = jax.device_get(ts.create(
      {'net': {'w': jnp.array([0.5, -0.3]), 'b': jnp.zeros(())}},
      {'net': {'mean': jnp.zeros(2)}}, optimizers))  # host copy: not donated
  mesh = parallel.make_mesh(jax.devices()[:2])
  x = np.random.default_rng(0).uniform(-8, 8, (8, 2)).astype(np.float32)
  loss = float(jax.device_get(parallel.make_train_step(
      quadratic_grads_fn, optimizers, 0.99, mesh)(
          parallel.put_replicated(state, mesh), parallel.put_batch(x, mesh),
          jax.random.key(0))[1]['loss']))
  for bound, applied in ((abs(loss) * 0.99, False), (abs(loss) * 1.01, True)):
    step = parallel.make_train_step(quadratic_grads_fn, optimizers, 0.99, mesh,
                                    {'loss': bound})
    new, metrics = step(parallel.put_replicated(state, mesh),
                        parallel.put_batch(x, mesh), jax.random.key(0))
    assert bool(metrics['finite']) == applied
    new = jax.device_get(new)
    assert int(new.step) == 1
    same = jax.tree_util.tree_all(jax.tree_util.tree_map(
        np.array_equal, state.params, new.params))
    assert same != applied
  with pytest.raises(ValueError, match=r"names \['gap'\].*reports \['loss'\]"):
    parallel.make_train_step(quadratic_grads_fn, optimizers, 0.99, mesh,
                             {'gap': 1.0})(
        parallel.put_replicated(state, mesh), parallel.put_batch(x, mesh),
        jax.random.key(0))
