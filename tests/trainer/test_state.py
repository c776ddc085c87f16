"""coopjax.trainer.state: the optimizer options freeze_steps, lr_after,
freeze_from, l2 and the per-epoch decay."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from coopjax.trainer import state as ts


def test_freeze_skips_updates_without_moving_adam_and_keeps_the_warmup():
  """The authors' CoopFlow(pre): frozen updates change nothing (parameters,
  Adam's moments and count), and the warm-up counts them: the first real
  update (step 3) has lr 0.1 * 3 / 4 and, Adam's first step, moves by it."""
  cfg = ml_collections.ConfigDict(dict(lr=0.1, b1=0.9, b2=0.999, warmup=4,
                                       freeze_steps=3))
  opt = ts.make_optimizer(cfg)
  params = {'w': jnp.arange(3.0)}
  state = opt.init(params)
  first = state
  history = []
  for i in range(4):
    grad = {'w': jnp.full(3, 1.0 + i)}  # the frozen gradients differ
    updates, state = opt.update(grad, state, params)
    params = optax.apply_updates(params, updates)
    history.append(np.asarray(params['w']))
    if i == 2:  # still the initial optimiser state, but for the counts
      for a, b in zip(jax.tree_util.tree_leaves(first),
                      jax.tree_util.tree_leaves(state)):
        if np.asarray(a).dtype.kind == 'f':
          np.testing.assert_array_equal(a, b)
  for h in history[:3]:
    np.testing.assert_array_equal(h, np.arange(3.0))
  np.testing.assert_allclose(np.arange(3.0) - history[3], 0.075, rtol=1e-4)
  with pytest.raises(ValueError, match='freeze_steps'):
    ts.make_optimizer(ml_collections.ConfigDict(dict(
        lr=0.1, b1=0.9, b2=0.999, warmup=0, freeze_steps=-1)))


def test_l2_on_named_parameters_and_per_epoch_decay():
  cfg = ml_collections.ConfigDict(dict(lr=0.1, warmup=0, l2=1e-3,
                                       l2_names=('g',), decay_rate=0.5,
                                       decay_steps=2))
  opt = ts.make_optimizer(cfg)
  params = {'a': {'g': jnp.ones(()), 'v': jnp.ones(())}}
  state, moves = opt.init(params), []
  for _ in range(4):  # a zero loss gradient: only the L2 term moves 'g'
    updates, state = opt.update(jax.tree_util.tree_map(jnp.zeros_like,
                                                       params), state, params)
    moves.append((-float(updates['a']['g']), float(updates['a']['v'])))
  # Adam on a constant-sign gradient moves by lr; lr halves every 2 updates
  np.testing.assert_allclose([m[0] for m in moves], [0.1, 0.1, 0.05, 0.05],
                             rtol=1e-3)
  assert all(m[1] == 0.0 for m in moves)


def test_lr_after_replaces_the_learning_rate_from_its_step():
  cfg = ml_collections.ConfigDict(dict(lr=0.1, b1=0.9, b2=0.999, warmup=0,
                                       lr_after=0.01, lr_after_step=2))
  opt = ts.make_optimizer(cfg)
  params = {'w': jnp.zeros(())}
  state, moves = opt.init(params), []
  for _ in range(4):  # Adam on a constant gradient moves by lr per update
    updates, state = opt.update({'w': jnp.ones(())}, state, params)
    moves.append(-float(updates['w']))
  np.testing.assert_allclose(moves, [0.1, 0.1, 0.01, 0.01], rtol=1e-4)
  # lr_after = 0 keeps lr, whatever lr_after_step says
  opt = ts.make_optimizer(ml_collections.ConfigDict(dict(
      lr=0.1, b1=0.9, b2=0.999, warmup=0, lr_after=0.0, lr_after_step=2)))
  state, moves = opt.init(params), []
  for _ in range(3):
    updates, state = opt.update({'w': jnp.ones(())}, state, params)
    moves.append(-float(updates['w']))
  np.testing.assert_allclose(moves, [0.1, 0.1, 0.1], rtol=1e-4)
  with pytest.raises(ValueError, match='lr_after'):
    ts.make_optimizer(ml_collections.ConfigDict(dict(
        lr=0.1, b1=0.9, b2=0.999, warmup=0, lr_after=-1.0, lr_after_step=2)))


@pytest.mark.parametrize('l2', [0.0, 1e-2])
def test_freeze_from_leaves_the_parameters_unchanged_from_its_step(l2):
  """CoopFlow(pre) with the flow frozen after pretraining: updates 0 and 1
  move by lr (Adam, constant gradient), from update 2 on nothing moves, the
  coupled L2 included."""
  cfg = ml_collections.ConfigDict(dict(lr=0.1, b1=0.9, b2=0.999, warmup=0,
                                       freeze_from=2, l2=l2, l2_names=('w',)))
  opt = ts.make_optimizer(cfg)
  params = {'w': jnp.ones(())}
  state, moves = opt.init(params), []
  for _ in range(5):
    updates, state = opt.update({'w': jnp.ones(())}, state, params)
    params = optax.apply_updates(params, updates)
    moves.append(-float(updates['w']))
  np.testing.assert_allclose(moves, [0.1, 0.1, 0.0, 0.0, 0.0], rtol=1e-4,
                             atol=0)
  with pytest.raises(ValueError, match='freeze_from'):
    ts.make_optimizer(ml_collections.ConfigDict(dict(lr=0.1, freeze_from=-1)))


# Reference values: the EMA against its formula, the optimiser against
# optax's own warm-up schedule, AdamW and clipping.

def test_ema_update_and_warm_start_follow_the_formula():
  opt = {'w': optax.sgd(0.5)}
  params = {'w': {'a': jnp.array([1.0, -2.0])}}
  state = ts.create(params, {'w': {}}, opt)
  grads = {'w': {'a': jnp.array([1.0, 1.0])}}
  # step 0 -> 1: n = 1, d = min(0.999, 2 / 11) = 2/11 (warm start)
  new = ts.apply_gradients(state, grads, {}, opt, 0.999)
  p1 = np.array([0.5, -2.5])
  np.testing.assert_allclose(new.params['w']['a'], p1, rtol=1e-6)
  d = 2.0 / 11.0
  np.testing.assert_allclose(new.ema['w']['a'],
                             d * np.array([1.0, -2.0]) + (1 - d) * p1,
                             rtol=1e-6)
  # Late in training the configured decay takes over: step 200 -> 201 has
  # (1 + 201) / (10 + 201) = 0.957 > 0.9, so d = 0.9.
  late = new.replace(step=jnp.asarray(200, jnp.int32))
  newer = ts.apply_gradients(late, grads, {}, opt, 0.9)
  p2 = p1 - 0.5
  np.testing.assert_allclose(newer.ema['w']['a'],
                             0.9 * np.asarray(new.ema['w']['a']) + 0.1 * p2,
                             rtol=1e-6)
  assert int(newer.step) == 201
  np.testing.assert_allclose(ts.ema_decay(0.999, 0), 0.1)
  np.testing.assert_allclose(ts.ema_decay(0.999, 5), 6 / 15)
  np.testing.assert_allclose(ts.ema_decay(0.5, 20), 0.5)  # 21/30 > 0.5


def test_networks_without_gradients_are_left_unchanged():
  opt = {'a': optax.sgd(1.0), 'b': optax.sgd(1.0)}
  state = ts.create({'a': jnp.ones(2), 'b': jnp.ones(2)}, {}, opt)
  new = ts.apply_gradients(state, {'a': jnp.ones(2)}, {'a': jnp.zeros(1)},
                           opt, 0.9)
  np.testing.assert_array_equal(new.params['b'], 1.0)
  np.testing.assert_array_equal(new.ema['b'], 1.0)
  np.testing.assert_array_equal(new.params['a'], 0.0)
  np.testing.assert_array_equal(new.stats['a'], 0.0)


@pytest.mark.parametrize('fields', [
    dict(warmup=4, warmup_offset=1),
    dict(warmup=3, weight_decay=0.1),
    dict(grad_clip=0.5, weight_decay=0.01),
])
def test_optimizer_equals_optax_definitions(fields):
  cfg = dict(lr=0.1, b1=0.8, b2=0.99, **fields)
  ours = ts.make_optimizer(ml_collections.ConfigDict(cfg))
  warmup, offset = fields.get('warmup', 0), fields.get('warmup_offset', 0)
  if warmup:
    lr = optax.linear_schedule(0.1 * offset / warmup, 0.1, warmup - offset)
  else:
    lr = 0.1
  ref = optax.adamw(lr, 0.8, 0.99, weight_decay=fields.get('weight_decay', 0))
  if fields.get('grad_clip'):
    ref = optax.chain(optax.clip_by_global_norm(fields['grad_clip']), ref)
  params = {'w': jnp.array([1.0, -2.0, 3.0]), 'b': jnp.array([0.5])}
  s_ours, s_ref = ours.init(params), ref.init(params)
  step_ours = jax.jit(lambda g, s, p: ours.update(g, s, p))
  step_ref = jax.jit(lambda g, s, p: ref.update(g, s, p))
  p_ours = p_ref = params
  rng = np.random.default_rng(0)
  for _ in range(6):
    g = {'w': jnp.asarray(rng.normal(size=3), jnp.float32),
         'b': jnp.asarray(rng.normal(size=1), jnp.float32)}
    u_ours, s_ours = step_ours(g, s_ours, p_ours)
    u_ref, s_ref = step_ref(g, s_ref, p_ref)
    p_ours = optax.apply_updates(p_ours, u_ours)
    p_ref = optax.apply_updates(p_ref, u_ref)
    for k in params:
      np.testing.assert_allclose(p_ours[k], p_ref[k], rtol=1e-5, atol=1e-7)
  # The option changed something: plain Adam at lr 0.1 ends elsewhere.
  adam, p = optax.adam(0.1, 0.8, 0.99), params
  s, step_adam = adam.init(p), jax.jit(adam.update)
  rng = np.random.default_rng(0)
  for _ in range(6):
    g = {'w': jnp.asarray(rng.normal(size=3), jnp.float32),
         'b': jnp.asarray(rng.normal(size=1), jnp.float32)}
    u, s = step_adam(g, s, p)
    p = optax.apply_updates(p, u)
  assert np.max(np.abs(np.asarray(p['w']) - np.asarray(p_ours['w']))) > 1e-3


def test_guarded_update_on_raveled_vectors_equals_the_per_array_update():
  # make_optimizer's FlatTransformation gets each network raveled into one
  # vector; the result must equal optax's update of the tree (clipping and
  # Adam across several arrays), the EMA formula, and the guard must revert
  # everything but the step on a non-finite gradient.
  cfg = ml_collections.ConfigDict(dict(lr=0.1, b1=0.9, b2=0.999, warmup=0,
                                       grad_clip=0.5))
  opt = ts.make_optimizer(cfg)
  assert isinstance(opt, ts.FlatTransformation)
  opts = {'w': opt}
  params = {'w': {'a': jnp.array([1.0, -2.0]), 'b': jnp.ones((2, 3))}}
  state = ts.create(params, {'w': {}}, opts)
  grads = {'w': {'a': jnp.array([0.3, -1.0]),
                 'b': jnp.arange(6.0).reshape(2, 3)}}
  new, ok = ts.guarded_update(state, grads, {}, opts, 0.999)
  assert bool(ok) and int(new.step) == 1
  updates, opt_state = opt.update(grads['w'], state.opt_state['w'],
                                  params['w'])
  want = optax.apply_updates(params['w'], updates)
  d = 2.0 / 11.0  # ema_decay(0.999, 1)
  for k in ('a', 'b'):
    np.testing.assert_allclose(new.params['w'][k], want[k], rtol=1e-6)
    assert np.abs(np.asarray(new.params['w'][k] - params['w'][k])).max() > 0
    np.testing.assert_allclose(
        new.ema['w'][k], d * params['w'][k] + (1 - d) * want[k], rtol=1e-6)
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
      new.opt_state['w'], opt_state)
  bad = {'w': {'a': jnp.array([jnp.nan, 0.0]), 'b': grads['w']['b']}}
  kept, ok = ts.guarded_update(new, bad, {}, opts, 0.999)
  assert not bool(ok) and int(kept.step) == 2
  jax.tree_util.tree_map(np.testing.assert_array_equal,
                         (kept.params, kept.ema, kept.opt_state),
                         (new.params, new.ema, new.opt_state))


@pytest.mark.parametrize('clip', [0.0, 0.5])
def test_flat_l2_equals_the_chain_over_the_tree_and_keeps_its_state_layout(
    clip):
  """The L2 path of make_optimizer (one raveled vector) against optax's chain
  over the parameter tree that it replaced: the same updates, through the
  tree API and through guarded_update's raveled one, and the same state
  structure (checkpoints written before restore)."""
  cfg = ml_collections.ConfigDict(dict(lr=0.1, warmup=0, l2=0.3,
                                       l2_names=('g',), grad_clip=clip))
  names = ('g',)
  mask = lambda t: jax.tree_util.tree_map_with_path(
      lambda path, _: path[-1].key in names, t)
  reference = [optax.masked(optax.add_decayed_weights(0.3), mask),
               optax.flatten(optax.adam(lambda step: 0.1))]
  if clip:
    reference.insert(0, optax.clip_by_global_norm(clip))
  reference = optax.chain(*reference)
  opt = ts.make_optimizer(cfg)
  params = {'a': {'g': jnp.array([1.0, -2.0]), 'w': jnp.ones((2, 3))},
            'b': {'g': jnp.array(3.0)}}
  state, ref_state = opt.init(params), reference.init(params)
  assert (jax.tree_util.tree_structure(state)
          == jax.tree_util.tree_structure(ref_state))
  train = ts.create({'net': params}, {'net': {}}, {'net': opt})
  rng = np.random.RandomState(0)
  for _ in range(3):
    grads = jax.tree_util.tree_map(
        lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
    updates, state = opt.update(grads, state, params)
    ref_updates, ref_state = reference.update(grads, ref_state, params)
    chex_close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5,
                                                         atol=1e-7)
    jax.tree_util.tree_map(chex_close, updates, ref_updates)
    jax.tree_util.tree_map(chex_close, state, ref_state)
    train = ts.apply_gradients(train, {'net': grads}, {}, {'net': opt}, 0.0)
    params = optax.apply_updates(params, ref_updates)
    jax.tree_util.tree_map(chex_close, train.params['net'], params)
  # the L2 term moved the decayed leaves only: with zero gradients, 'w' stays
  zero = jax.tree_util.tree_map(jnp.zeros_like, params)
  moved = opt.update(zero, opt.init(params), params)[0]
  assert float(jnp.abs(moved['a']['w']).max()) == 0.0
  assert float(jnp.abs(moved['b']['g'])) > 0.0
