"""coopjax.trainer.state: the optimizer options freeze_steps, lr_after, l2 and
the per-epoch decay."""

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
  with pytest.raises(ValueError, match='lr_after'):
    ts.make_optimizer(ml_collections.ConfigDict(dict(
        lr=0.1, b1=0.9, b2=0.999, warmup=0, lr_after=-1.0, lr_after_step=2)))
