"""The best checkpoint of a run by a named metric (``config.train.best_metric``).

Whenever a logged or reported figure of that name improves (``best_mode``
'min' or 'max'), the train state is saved in ``<workdir>/checkpoints_best``
(one checkpoint, replaced by the next better one) and ``<workdir>/best.json``
records ``{'metric', 'mode', 'value', 'step'}``. The latest checkpoints in
``checkpoints/``, the ones a resumed run needs, are never touched; a resumed
run reads ``best.json`` and keeps improving on it. ``--mode=eval``,
``sample`` and the tasks use this checkpoint with
``--config.eval.checkpoint=best``.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, Optional

import jax
import numpy as np
from jax.experimental import multihost_utils

from coopjax.console import log
from coopjax.trainer import distributed
from coopjax.trainer.checkpoint import Checkpointer

MODES = ('min', 'max')
SUBDIR = 'checkpoints_best'


def check_mode(mode: str) -> None:
  if mode not in MODES:
    raise ValueError(f'config.train.best_mode={mode!r}; expected one of '
                     f'{MODES}.')


def read_record(workdir: str) -> Optional[Dict[str, Any]]:
  """``best.json`` of ``workdir``, or None."""
  path = os.path.join(workdir, 'best.json')
  if not os.path.isfile(path):
    return None
  with open(path, encoding='utf-8') as f:
    return json.load(f)


class BestCheckpoint:
  """Keeps the best checkpoint of a run by ``metric`` (module docstring).

  Args:
    workdir: the run's directory.
    metric: the figure's name as logged (e.g. 'fid', 'frechet_digits').
    mode: 'min' (lower is better) or 'max'.
  """

  def __init__(self, workdir: str, metric: str, mode: str = 'min'):
    check_mode(mode)
    self.workdir, self.metric, self.mode = workdir, metric, mode
    self.ckpt = Checkpointer(workdir, 1, subdir=SUBDIR)
    record = read_record(workdir)
    if record is not None and (record.get('metric') != metric or
                               record.get('mode') != mode):
      raise ValueError(
          f'{workdir}/best.json tracks {record.get("metric")!r} '
          f'({record.get("mode")}); this config asks for {metric!r} ({mode}). '
          f'Move {workdir}/best.json and {workdir}/{SUBDIR} aside to start '
          f'tracking the new metric.')
    self.value = None if record is None else float(record['value'])
    self.step = None if record is None else int(record['step'])

  def better(self, value: float) -> bool:
    """Whether ``value`` improves on the best so far."""
    if not math.isfinite(value):
      return False
    if self.value is None:
      return True
    return value < self.value if self.mode == 'min' else value > self.value

  def consider(self, step: int, scalars: Dict[str, float], state: Any) -> bool:
    """Saves ``state`` as the best if ``scalars[metric]`` improves on it.

    A collective (every process calls it); the value of process 0 decides
    (reports are computed there). Returns whether it was saved.
    """
    value = scalars.get(self.metric)
    value = math.nan if value is None else float(value)
    if jax.process_count() > 1:
      value = float(multihost_utils.broadcast_one_to_all(np.float64(value)))
    # After a rollback a step may repeat an older one: never go back.
    if not self.better(value) or (self.step is not None and step <= self.step):
      return False
    self.ckpt.save(step, state, force=True)
    self.ckpt.wait()
    self.value, self.step = value, step
    if distributed.is_main():
      path = os.path.join(self.workdir, 'best.json')
      with open(path + '.tmp', 'w', encoding='utf-8') as f:
        json.dump({'metric': self.metric, 'mode': self.mode, 'value': value,
                   'step': step}, f, indent=2)
      os.replace(path + '.tmp', path)
      log(f'Step {step}: best {self.metric}={value:.4f} so far; saved in '
          f'{self.ckpt.directory}.')
    return True

  def close(self) -> None:
    self.ckpt.wait()
    self.ckpt.close()


def from_config(train_cfg, workdir: str) -> Optional[BestCheckpoint]:
  """The tracker ``config.train`` asks for, or None (``best_metric=''``)."""
  if not train_cfg.best_metric:
    return None
  return BestCheckpoint(workdir, train_cfg.best_metric, train_cfg.best_mode)


def restore(workdir: str, target: Any) -> Any:
  """The best checkpoint of ``workdir`` in the structure of ``target``.

  Raises:
    FileNotFoundError: the run kept no best checkpoint.
  """
  state = None
  if os.path.isdir(os.path.join(workdir, SUBDIR)):
    ckpt = Checkpointer(workdir, 1, subdir=SUBDIR)
    state = ckpt.restore(target)
    ckpt.close()
  if state is None:
    raise FileNotFoundError(
        f'No best checkpoint in {os.path.join(workdir, SUBDIR)}: train with '
        f'--config.train.best_metric=<a logged figure, e.g. fid> first, or '
        f'use --config.eval.checkpoint=latest.')
  return state
