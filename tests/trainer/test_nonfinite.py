"""Non-finite losses: stop at the step keeping the last good checkpoint, or
skip / roll back."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax.trainer import loop as train
from coopjax.trainer import nonfinite
from coopjax import data
from coopjax.trainer import workdir as wd

from helpers.trainer import tiny_config, params_of
from helpers import trainer_procs as tp


@pytest.mark.slow
def test_nonfinite_loss_stops_with_step_and_keeps_checkpoint(tmp_path):
  workdir = str(tmp_path / 'run')
  config = tiny_config(steps=20, ckpt_every=1)
  config.optim.ebm.lr = config.optim.init.lr = 1e30  # diverges within steps
  with pytest.raises(nonfinite.NonFiniteError, match=r'at step (\d+)') as err:
    train.train_and_evaluate(config, workdir)
  failed = int(str(err.value).split('at step ')[1].split(';')[0])
  steps = sorted(int(s) for s in os.listdir(os.path.join(workdir,
                                                          'checkpoints')))
  assert steps and steps[-1] == failed - 1
  # The message names the kept checkpoint and how to use it.
  assert (f'The last good checkpoint (step {failed - 1}) in ' in str(err.value)
          and '--mode=sample and --mode=eval on this workdir use it' in
          str(err.value)), str(err.value)


def _poison(monkeypatch, bad_step):
  """Makes row 0 of step ``bad_step``'s batch NaN."""
  load = data.load

  def poisoned_load(*args, **kwargs):
    ds = load(*args, **kwargs)
    batch = ds.batch

    def poisoned(step, *a, **k):
      b = batch(step, *a, **k)
      if step == bad_step:
        b = dict(b, x=np.array(b['x']))
        b['x'][0] = np.nan
      return b
    object.__setattr__(ds, 'batch', poisoned)
    return ds
  monkeypatch.setattr(data, 'load', poisoned_load)


@pytest.mark.slow
def test_nan_stops_at_its_step_keeping_the_last_good_checkpoint(
    tmp_path, monkeypatch):
  _poison(monkeypatch, bad_step=3)
  workdir = str(tmp_path / 'run')
  with pytest.raises(nonfinite.NonFiniteError, match='at step 4;'):
    train.train_and_evaluate(tiny_config(steps=6, ckpt_every=1), workdir)
  assert tp.checkpoint_steps(workdir) == [1, 2, 3]


@pytest.mark.slow
def test_a_flag_read_one_step_late_is_handled_as_exactly(tmp_path,
                                                        monkeypatch, capsys):
  # Step 3 neither logs, saves nor samples (every 2 steps), so the trainer
  # reads its finite flag only after step 4 is queued.
  _poison(monkeypatch, bad_step=2)
  with pytest.raises(nonfinite.NonFiniteError, match='at step 3;'):
    train.train_and_evaluate(tiny_config(steps=6), str(tmp_path / 'stop'))
  assert tp.checkpoint_steps(str(tmp_path / 'stop')) == [2]  # not 4
  skip = train.train_and_evaluate(
      tiny_config(steps=6, on_nonfinite='skip'), str(tmp_path / 'skip'))
  assert 'Step 3: non-finite loss; update skipped.' in capsys.readouterr().out
  rolled = train.train_and_evaluate(
      tiny_config(steps=6, on_nonfinite='rollback'), str(tmp_path / 'roll'))
  assert 'Step 3: non-finite; rolled back to step 2' in capsys.readouterr().out
  assert int(rolled.step) == int(skip.step) == 6
  tp.assert_trees_equal(params_of(rolled), params_of(skip))
  # Skipping batch 2 differs from training on it: the runs above did skip.
  monkeypatch.undo()
  clean = train.train_and_evaluate(tiny_config(steps=6),
                                   str(tmp_path / 'clean'))
  assert not np.allclose(
      jax.tree_util.tree_leaves(params_of(clean))[0],
      jax.tree_util.tree_leaves(params_of(skip))[0])


@pytest.mark.slow
def test_rollback_skips_the_bad_batch_like_skip(tmp_path, monkeypatch,
                                                capsys):
  _poison(monkeypatch, bad_step=3)
  skip = train.train_and_evaluate(
      tiny_config(steps=6, on_nonfinite='skip'), str(tmp_path / 'skip'))
  capsys.readouterr()
  rolled = train.train_and_evaluate(
      tiny_config(steps=6, on_nonfinite='rollback'), str(tmp_path / 'roll'))
  assert 'Step 4: non-finite; rolled back to step 2' in capsys.readouterr().out
  assert int(rolled.step) == int(skip.step) == 6
  leaves = jax.tree_util.tree_leaves(params_of(rolled))
  assert all(np.all(np.isfinite(x)) for x in leaves)
  tp.assert_trees_equal(params_of(rolled), params_of(skip))
  # The same workdir with another config is refused, naming the field ...
  other = tiny_config(steps=6, on_nonfinite='skip')
  other.model.width = 16
  with pytest.raises(wd.ConfigChangedError, match=r'model\.width: 8 .* 16'):
    train.train_and_evaluate(other, str(tmp_path / 'skip'))
  # ... and accepted with the override (here: a new seed, nothing to train).
  reseeded = tiny_config(steps=6, on_nonfinite='skip')
  reseeded.seed = 1
  with pytest.raises(wd.ConfigChangedError, match='seed'):
    train.train_and_evaluate(reseeded, str(tmp_path / 'skip'))
  state = train.train_and_evaluate(reseeded, str(tmp_path / 'skip'),
                                   allow_config_change=True)
  assert int(state.step) == 6
  saved = json.load(open(tmp_path / 'skip' / 'config.json'))
  assert saved['seed'] == 1


def test_within_limits_bounds_absolute_values_and_describe_names_them():
  metrics = {'energy_gap': jnp.float32(-5.0), 'loss': jnp.float32(1.0)}
  assert bool(nonfinite.within_limits(metrics, {'energy_gap': 5.0}))
  assert not bool(nonfinite.within_limits(metrics, {'energy_gap': 4.9}))
  assert bool(nonfinite.within_limits(metrics, {}))
  with pytest.raises(ValueError, match=r"names \['gap'\].*"
                     r"reports \['energy_gap', 'loss'\]"):
    nonfinite.within_limits(metrics, {'gap': 1.0})
  host = {**jax.device_get(metrics), 'finite': np.bool_(False)}
  assert nonfinite.describe(host, {'energy_gap': 4.9}).startswith(
      'diverged: energy_gap=5 beyond config.train.metric_limits')
  assert nonfinite.describe({**host, 'loss': np.float32(np.inf)},
                            {'energy_gap': 4.9}) == 'non-finite'
  # Bad with every metric within its bound: the new parameters were not
  # finite.
  assert nonfinite.describe(host, {'energy_gap': 5.0}) == 'non-finite'


@pytest.mark.slow
def test_the_2d_config_stops_a_run_whose_chains_blow_up(tmp_path):
  """configs/checkerboard.py bounds chain_grad_norm (30; healthy runs stay
  under 9): with a Langevin step constant 1e4 times smaller, grad f / s_t^2
  is some 1e4 times a healthy run's and the first step is refused (the
  other tiny runs of these tests train under the same bound)."""
  c = tiny_config(steps=2)
  assert dict(c.train.metric_limits)['chain_grad_norm'] == 30.0
  c.schedule.step_const = 2e-7
  with pytest.raises(nonfinite.NonFiniteError,
                     match=r'\(diverged: chain_grad_norm=.*\) at step 1;'):
    train.train_and_evaluate(c, str(tmp_path / 'run'))
  assert tp.checkpoint_steps(str(tmp_path / 'run')) == []


@pytest.mark.slow
def test_a_finite_divergence_stops_or_skips_like_a_nan(tmp_path, monkeypatch,
                                                      capsys):
  # A bound no step meets stands in for an EBM whose energies ran away.
  never = {'energy_gap': 1e-12}
  with pytest.raises(nonfinite.NonFiniteError,
                     match=r'\(diverged: energy_gap=.*\) at step 1;'):
    train.train_and_evaluate(tiny_config(steps=4, metric_limits=never),
                             str(tmp_path / 'stop'))
  assert tp.checkpoint_steps(str(tmp_path / 'stop')) == []
  # 'skip' applies none of the steps and gives up after the limit in a row.
  monkeypatch.setattr(nonfinite, 'MAX_BAD_IN_A_ROW', 3)
  with pytest.raises(nonfinite.NonFiniteError,
                     match='at step 3, after 3 bad steps in a row'):
    train.train_and_evaluate(
        tiny_config(steps=6, metric_limits=never, on_nonfinite='skip'),
        str(tmp_path / 'skip'))
  out = capsys.readouterr().out
  assert 'Step 1: diverged: energy_gap=' in out
  assert 'update skipped' in out
