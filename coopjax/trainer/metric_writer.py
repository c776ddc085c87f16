"""Metrics to JSON lines (``metrics.jsonl``) and TensorBoard event files.

Only process 0 writes; other processes get a writer that does nothing.
"""

from __future__ import annotations

import collections
import json
import os
import time
from typing import Dict, Optional

import jax


class MetricWriter:
  """Appends ``{"step": ..., **scalars}`` lines and TensorBoard scalars.

  Args:
    workdir: the run directory (``metrics.jsonl`` and ``tensorboard/`` go there).
    enabled: write anything at all (default: only on process 0).
  """

  def __init__(self, workdir: str, enabled: Optional[bool] = None):
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    self._tb = None
    self._path = os.path.join(workdir, 'metrics.jsonl')
    if self.enabled:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tb = SummaryWriter(os.path.join(workdir, 'tensorboard'))

  def write(self, step: int, scalars: Dict[str, float]) -> None:
    """Records ``scalars`` at ``step``."""
    if not self.enabled:
      return
    record = {'step': int(step), 'time': time.time(),
              **{k: float(v) for k, v in scalars.items()}}
    with open(self._path, 'a', encoding='utf-8') as f:
      f.write(json.dumps(record) + '\n')
    for k, v in scalars.items():
      self._tb.add_scalar(k, float(v), int(step))
    self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def format_duration(seconds: float) -> str:
  """``3725 -> '1h02m05s'``."""
  seconds = int(max(seconds, 0))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f'{h}h{m:02d}m{s:02d}s' if h else f'{m}m{s:02d}s'


class Progress:
  """The progress line: losses, the rate and the ETA from recent steps.

  The rate is measured over the last ``window`` logged intervals (a moving
  window), from the time :meth:`started` marks (after the first step, whose
  compilation is reported on its own) and without the time spent in sample
  reports and checkpoints (:meth:`exclude`); the ETA adds that overhead per
  remaining step back, as measured so far.

  Args:
    total: the run's last step.
    start: the step the run starts from.
    window: logged intervals the rate is measured over.
    clock: seconds (monotonic), replaceable in tests.
  """

  def __init__(self, total: int, start: int, window: int = 10,
               clock=time.monotonic):
    self.total, self.start = total, start
    self._clock = clock
    self._marks = collections.deque(maxlen=window + 1)  # (time, step)
    self._excluded = 0.0  # seconds left out of the rate so far
    self._timed_from: Optional[int] = None  # step of the first mark
    self._marks.append((clock(), start))

  def started(self, step: int) -> None:
    """Restarts the measurement at ``step`` (e.g. after compilation)."""
    self._marks.clear()
    self._marks.append((self._clock() - self._excluded, step))
    self._timed_from = step

  def exclude(self, seconds: float) -> None:
    """Leaves ``seconds`` (a report, a checkpoint) out of the rate."""
    self._excluded += seconds

  def rate(self) -> float:
    """Steps per second over the window (0.0 before two marks)."""
    (t0, s0), (t1, s1) = self._marks[0], self._marks[-1]
    return (s1 - s0) / (t1 - t0) if t1 > t0 and s1 > s0 else 0.0

  def eta(self, step: int) -> float:
    """Seconds to ``total``: the window's rate plus the measured overhead
    per step (NaN before the rate is known)."""
    rate = self.rate()
    if rate <= 0:
      return float('nan')
    timed = step - (self._timed_from if self._timed_from is not None
                    else self.start)
    overhead = self._excluded / timed if timed > 0 else 0.0
    return (self.total - step) * (1.0 / rate + overhead)

  def line(self, step: int, scalars: Dict[str, float]) -> str:
    """Marks ``step`` and returns its progress line."""
    self._marks.append((self._clock() - self._excluded, step))
    rate, eta = self.rate(), self.eta(step)
    shown = ' '.join(f'{k}={v:.4g}' for k, v in sorted(scalars.items())
                     if k != 'finite')
    eta_s = format_duration(eta) if rate > 0 else '?'
    return (f'step {step}/{self.total} {shown} | {rate:.2f} steps/s '
            f'ETA {eta_s}')
