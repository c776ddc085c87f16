"""Preemption: SIGTERM or SIGINT stops training at the next step boundary.

A cluster that reclaims a machine sends SIGTERM (Cloud TPU, SLURM with
``--signal``, Kubernetes); a user presses Ctrl-C (SIGINT). The handler only
records the request; the trainer asks :meth:`PreemptionGuard.should_stop`
after each step, and every process agrees on the answer (an all-gather), so
all hosts stop after the same step, save one checkpoint and exit with
:data:`EXIT_PREEMPTED`. A second signal while stopping aborts at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Dict, Optional

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
        if guard.should_stop():
          save(); break
  """

  def __init__(self):
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

  def should_stop(self) -> bool:
    """True if any process received a stop signal (all processes must call)."""
    return distributed.any_process(self.requested)
