"""PreemptionGuard.should_stop in-process: when the processes agree on a stop
(the all-gather is simulated; the subprocess tests are in test_preemption.py)."""

import pytest

from coopjax.trainer import preemption


@pytest.fixture
def two_processes(monkeypatch):
  """Pretends to be one of two processes; records the steps at which the
  all-gather ran and answers it with ``other`` or this process's flag."""
  calls, other = [], {'requested': False}

  def any_process(flag):
    calls.append(flag)
    return bool(flag) or other['requested']

  monkeypatch.setattr(preemption.jax, 'process_count', lambda: 2)
  monkeypatch.setattr(preemption.distributed, 'any_process', any_process)
  return calls, other


def test_several_processes_agree_only_every_check_every_steps(two_processes):
  calls, other = two_processes
  guard = preemption.PreemptionGuard(check_every=10)
  assert [guard.should_stop(s) for s in range(1, 21)] == [False] * 20
  assert len(calls) == 2  # after steps 10 and 20 only
  guard.signal_name = 'SIGTERM'  # as the handler records a signal
  assert [guard.should_stop(s) for s in range(21, 30)] == [False] * 9
  assert guard.should_stop(30) and calls[-1] is True and len(calls) == 3


def test_a_signal_on_another_process_stops_this_one_at_the_same_step(
    two_processes):
  calls, other = two_processes
  guard = preemption.PreemptionGuard(check_every=4)
  other['requested'] = True
  assert [guard.should_stop(s) for s in (5, 6, 7)] == [False] * 3
  assert guard.should_stop(8) and calls == [False]


def test_one_process_answers_after_every_step_without_a_collective(
    monkeypatch):
  monkeypatch.setattr(preemption.jax, 'process_count', lambda: 1)
  monkeypatch.setattr(
      preemption.distributed.multihost_utils, 'process_allgather',
      lambda *a, **k: pytest.fail('no all-gather on one process'))
  guard = preemption.PreemptionGuard(check_every=10)
  assert not guard.should_stop(3)
  guard.signal_name = 'SIGINT'
  assert guard.should_stop(3)


def test_check_every_below_one_is_refused():
  with pytest.raises(ValueError, match='check_every must be >= 1, got 0'):
    preemption.PreemptionGuard(check_every=0)
