"""Preemption: SIGTERM or SIGINT stops training at the next step boundary.

A cluster that reclaims a machine sends SIGTERM (Cloud TPU, SLURM with
``--signal``, Kubernetes); a user presses Ctrl-C (SIGINT). The handler only
records the request; the trainer asks :meth:`PreemptionGuard.should_stop`
after each step. One process answers at once. Several agree on the answer
with an all-gather, every ``check_every`` steps (the same steps on every
process: the all-gather waits for the step before it, so asking after every
step would serialise host and devices), so all hosts stop after the same
step, save one checkpoint and exit with :data:`EXIT_PREEMPTED`. A second
signal while stopping aborts at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Dict, Optional

import jax

from coopjax.trainer import distributed

# sysexits.h EX_TEMPFAIL: stopped early, resumable; launch scripts relaunch on it.
EXIT_PREEMPTED = 75
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class PreemptionGuard:
  """Records SIGTERM/SIGINT while active (a context manager).

  Example::

    with PreemptionGuard() as guard:
      for step in ...:
        ...
        if guard.should_stop(step):
          save(); break
  """

  def __init__(self, check_every: int = 1):
    """``check_every``: with several processes, the steps between their
    agreements on a stop (``config.train.stop_check_every``); >= 1."""
    if check_every < 1:
      raise ValueError(f'check_every must be >= 1, got {check_every}.')
    self.check_every = check_every
    self.signal_name: Optional[str] = None
    self._previous: Dict[int, object] = {}

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    name = signal.Signals(signum).name
    if self.signal_name is not None:
      print(f'Second {name} while stopping; exiting now without saving.',
            file=sys.stderr, flush=True)
      raise SystemExit(128 + signum)
    self.signal_name = name
    print(f'Received {name}: saving a checkpoint and stopping after this '
          f'step.', file=sys.stderr, flush=True)

  def __enter__(self) -> 'PreemptionGuard':
    if threading.current_thread() is not threading.main_thread():
      return self  # Python delivers signals to the main thread only.
    for s in SIGNALS:
      self._previous[s] = signal.signal(s, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for s, handler in self._previous.items():
      signal.signal(s, handler)
    self._previous.clear()

  @property
  def requested(self) -> bool:
    """True once this process received a stop signal."""
    return self.signal_name is not None

  def should_stop(self, step: int) -> bool:
    """Whether to stop after step ``step`` (every process must call it after
    every step). One process: whether it received a stop signal. Several:
    whether any did, asked (an all-gather) only when ``step`` is a multiple
    of ``check_every``; False in between."""
    if step % self.check_every and jax.process_count() > 1:
      return False
    return distributed.any_process(self.requested)
