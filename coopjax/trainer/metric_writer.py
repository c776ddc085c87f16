"""Metrics to JSON lines (``metrics.jsonl``) and TensorBoard event files.

Only process 0 writes; other processes get a writer that does nothing.
"""

from __future__ import annotations

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
  """A one-line progress report with rate and ETA."""

  def __init__(self, total: int, start: int):
    self.total, self.start = total, start
    self._t0 = time.time()

  def line(self, step: int, scalars: Dict[str, float]) -> str:
    done = step - self.start
    elapsed = time.time() - self._t0
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = (self.total - step) / rate if rate > 0 else float('nan')
    shown = ' '.join(f'{k}={v:.4g}' for k, v in sorted(scalars.items())
                     if k != 'finite')
    eta_s = format_duration(eta) if rate > 0 else '?'
    return (f'step {step}/{self.total} {shown} | {rate:.2f} steps/s '
            f'ETA {eta_s}')
