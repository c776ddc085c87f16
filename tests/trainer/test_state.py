"""coopjax.trainer.state: the optimizer options freeze_steps and lr_after."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from coopjax.trainer import state as ts


def test_freeze_keeps_params_exactly_for_n_steps_then_trains():
  cfg = ml_collections.ConfigDict(dict(lr=0.1, b1=0.9, b2=0.999, warmup=0,
                                       freeze_steps=3))
  opt = ts.make_optimizer(cfg)
  params = {'w': jnp.arange(3.0)}
  state = opt.init(params)
  history = []
  for _ in range(4):
    updates, state = opt.update({'w': jnp.ones(3)}, state, params)
    params = optax.apply_updates(params, updates)
    history.append(np.asarray(params['w']))
  for h in history[:3]:
    np.testing.assert_array_equal(h, np.arange(3.0))
  assert np.all(history[3] < np.arange(3.0))
  with pytest.raises(ValueError, match='freeze_steps'):
    ts.make_optimizer(ml_collections.ConfigDict(dict(
        lr=0.1, b1=0.9, b2=0.999, warmup=0, freeze_steps=-1)))


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
