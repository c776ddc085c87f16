"""Faults: stop signals, killed runs, bad checkpoints, NaNs, foreign workdirs.

The signal tests run the trainer in subprocesses (hard timeouts); the others
run it in-process on the tiny checkerboard model of test_train.py.
"""

import errno
import json
import os
import re
import signal
import time

import jax
import numpy as np
import pytest

from coopjax import data
from coopjax.trainer import loop as train
from coopjax.trainer import nonfinite
from coopjax.trainer import workdir as wd
from coopjax.trainer.preemption import EXIT_PREEMPTED
from test_train import params_of, tiny_config
import trainer_procs as tp

STEPS = 120
RUN = (f'--config.train.steps={STEPS}', '--config.train.ckpt_every=10',
       '--config.train.log_every=10', '--config.train.sample_every=100000')


def _wait_for_checkpoint(proc, workdir, deadline):
  while time.time() < deadline and proc.poll() is None:
    if tp.checkpoint_steps(workdir):
      return
    time.sleep(0.05)
  raise AssertionError(f'no checkpoint appeared; output:\n'
                       f'{tp.finish(proc, time.time() + 5)[-3000:]}')


@pytest.fixture(scope='module')
def interrupted_runs(tmp_path_factory):
  """An uninterrupted run, one stopped by SIGTERM and one killed by SIGKILL
  (each once it had a checkpoint), then both resumed, all as subprocesses."""
  root = tmp_path_factory.mktemp('interrupted')
  dirs = {k: str(root / k) for k in ('straight', 'term', 'kill')}
  deadline = time.time() + tp.TIMEOUT_S
  procs = {k: tp.start(d, *RUN) for k, d in dirs.items()}
  results = {}
  try:
    for name, sig in (('term', signal.SIGTERM), ('kill', signal.SIGKILL)):
      _wait_for_checkpoint(procs[name], dirs[name], deadline)
      procs[name].send_signal(sig)
    for name, proc in procs.items():
      out = tp.finish(proc, deadline)
      results[name] = dict(rc=proc.returncode, out=out,
                           steps=tp.checkpoint_steps(dirs[name]))
    resumed = {k: tp.start(dirs[k], *RUN) for k in ('term', 'kill')}
    for name, proc in resumed.items():
      out = tp.finish(proc, deadline)
      results[name].update(resumed_rc=proc.returncode, resumed_out=out)
  finally:
    for p in list(procs.values()) + list(locals().get('resumed', {}).values()):
      if p.poll() is None:
        p.kill()
  final = {k: tp.load_checkpoint(d, STEPS) for k, d in dirs.items()}
  return results, final


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(interrupted_runs):
  results, final = interrupted_runs
  term = results['term']
  assert term['rc'] == EXIT_PREEMPTED, term['out'][-3000:]
  stopped = int(re.search(r'Stopped after step (\d+) ', term['out'])[1])
  assert 0 < stopped < STEPS
  assert term['steps'][-1] == stopped  # saved at the step it stopped
  assert term['resumed_rc'] == 0, term['resumed_out'][-3000:]
  assert f'at step {stopped}' in term['resumed_out']  # "Resumed from ..."
  tp.assert_trees_equal(final['term'], final['straight'])


def test_sigkill_then_resume_is_bit_identical(interrupted_runs):
  results, final = interrupted_runs
  kill = results['kill']
  assert kill['rc'] == -signal.SIGKILL
  assert kill['steps'] and kill['steps'][-1] < STEPS  # really mid-run
  assert kill['resumed_rc'] == 0, kill['resumed_out'][-3000:]
  assert 'Resumed from' in kill['resumed_out']
  assert int(final['kill']['step']) == STEPS
  tp.assert_trees_equal(final['kill'], final['straight'])


def test_corrupt_and_half_written_checkpoints_are_set_aside(tmp_path, capfd):
  straight = train.train_and_evaluate(tiny_config(), str(tmp_path / 'a'))
  workdir = str(tmp_path / 'b')
  train.train_and_evaluate(tiny_config(), workdir)
  ckpts = os.path.join(workdir, 'checkpoints')
  for root, _, files in os.walk(os.path.join(ckpts, '4', 'default')):
    for f in files:
      with open(os.path.join(root, f), 'wb') as fh:
        fh.write(b'not a checkpoint')
  partial = os.path.join(ckpts, '6.orbax-checkpoint-tmp-1234567')
  os.makedirs(partial)
  capfd.readouterr()
  resumed = train.train_and_evaluate(tiny_config(), workdir)
  err = capfd.readouterr().err
  assert 'checkpoints/4 cannot be read' in err
  assert 'half-written' in err
  bad = sorted(os.listdir(os.path.join(workdir, 'checkpoints_bad')))
  assert [b.split('.')[0] for b in bad] == ['4', '6']
  assert tp.checkpoint_steps(workdir) == [2, 4]  # resumed from 2, re-saved 4
  tp.assert_trees_equal(params_of(resumed), params_of(straight))


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


def test_nan_stops_at_its_step_keeping_the_last_good_checkpoint(
    tmp_path, monkeypatch):
  _poison(monkeypatch, bad_step=3)
  workdir = str(tmp_path / 'run')
  with pytest.raises(nonfinite.NonFiniteError, match='at step 4;'):
    train.train_and_evaluate(tiny_config(steps=6, ckpt_every=1), workdir)
  assert tp.checkpoint_steps(workdir) == [1, 2, 3]


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


def test_config_guard_ignores_safe_fields():
  old = json.loads(tiny_config().to_json_best_effort())
  new = tiny_config(steps=99, log_every=7, on_nonfinite='skip')
  new.sample.num = 5
  assert wd.config_changes(old, json.loads(new.to_json_best_effort())) == []
  new.optim.ebm.lr = 0.5
  new.data.name = '8gaussians'
  assert wd.config_changes(old, json.loads(new.to_json_best_effort())) == [
      'data.name', 'optim.ebm.lr']


def test_unwritable_or_full_workdir_is_a_clear_error(tmp_path, monkeypatch):
  blocker = tmp_path / 'file'
  blocker.write_text('x')
  with pytest.raises(wd.WorkdirError, match='not a directory.*--workdir'):
    train.train_and_evaluate(tiny_config(), str(blocker / 'run'))
  with pytest.raises(wd.WorkdirError, match='disk is full'):
    with wd.explain_write_errors(str(tmp_path), 'checkpoint 2'):
      raise OSError(errno.ENOSPC, 'No space left on device')

  class Usage:
    free = 2**20
  monkeypatch.setattr(wd.shutil, 'disk_usage', lambda _: Usage)
  with pytest.raises(wd.WorkdirError, match='Only 1.0 MiB free'):
    train.train_and_evaluate(tiny_config(), str(tmp_path / 'run'))
