"""Stop signals and killed runs: the trainer in subprocesses (hard timeouts)
resumes bit-identically."""

import re
import signal
import time

import pytest

from coopjax.trainer.preemption import EXIT_PREEMPTED

from helpers import trainer_procs as tp

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
  (each once it had a checkpoint), then both resumed, all as subprocesses.

  The two to be interrupted start once the uninterrupted one has a
  checkpoint: its programs are then in the shared compilation cache, so
  only one of the three compiles them."""
  root = tmp_path_factory.mktemp('interrupted')
  dirs = {k: str(root / k) for k in ('straight', 'term', 'kill')}
  deadline = time.time() + tp.TIMEOUT_S
  procs = {'straight': tp.start(dirs['straight'], *RUN, devices=1)}
  results = {}
  try:
    _wait_for_checkpoint(procs['straight'], dirs['straight'], deadline)
    procs.update({k: tp.start(dirs[k], *RUN, devices=1)
                  for k in ('term', 'kill')})
    for name, sig in (('term', signal.SIGTERM), ('kill', signal.SIGKILL)):
      _wait_for_checkpoint(procs[name], dirs[name], deadline)
      procs[name].send_signal(sig)
    for name, proc in procs.items():
      out = tp.finish(proc, deadline)
      results[name] = dict(rc=proc.returncode, out=out,
                           steps=tp.checkpoint_steps(dirs[name]))
    resumed = {k: tp.start(dirs[k], *RUN, devices=1) for k in ('term', 'kill')}
    for name, proc in resumed.items():
      out = tp.finish(proc, deadline)
      results[name].update(resumed_rc=proc.returncode, resumed_out=out)
  finally:
    for p in list(procs.values()) + list(locals().get('resumed', {}).values()):
      if p.poll() is None:
        p.kill()
  final = {k: tp.load_checkpoint(d, STEPS) for k, d in dirs.items()}
  return results, final


@pytest.mark.slow
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


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(interrupted_runs):
  results, final = interrupted_runs
  kill = results['kill']
  assert kill['rc'] == -signal.SIGKILL
  assert kill['steps'] and kill['steps'][-1] < STEPS  # really mid-run
  assert kill['resumed_rc'] == 0, kill['resumed_out'][-3000:]
  assert 'Resumed from' in kill['resumed_out']
  assert int(final['kill']['step']) == STEPS
  tp.assert_trees_equal(final['kill'], final['straight'])
