"""Orbax checkpoints of a :class:`~coopjax.trainer.state.TrainState`.

The workdir's ``checkpoints/`` folder holds one orbax step directory per
save. Before restoring, the stored tree is compared with the state the current
config builds: a checkpoint of a different model stops the run with a message
naming the first mismatching array, and nothing is written.

A checkpoint that cannot be read (corrupted files) or was never finished (an
orbax ``*.orbax-checkpoint-tmp-*`` folder left by a killed save) is reported,
moved aside to ``checkpoints_bad/`` rather than deleted, and the previous
checkpoint is used.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, List, Optional, Tuple

import jax
import orbax.checkpoint as ocp
from etils import epath

from coopjax.trainer import distributed
from coopjax.trainer.workdir import explain_write_errors

PARTIAL_MARKER = '.orbax-checkpoint-tmp'


class CheckpointMismatchError(ValueError):
  """The workdir holds a checkpoint this config cannot continue."""


def _key_name(k: Any) -> str:
  for attr in ('name', 'key', 'idx'):
    if hasattr(k, attr):
      return str(getattr(k, attr))
  return str(k)


def _paths_shapes(tree: Any) -> dict:
  """``{'ema/ebm/.../kernel': shape}`` for a state or its stored metadata."""
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {'/'.join(_key_name(k) for k in p): tuple(getattr(v, 'shape', ()))
          for p, v in flat}


def _first_mismatch(stored: dict, wanted: dict) -> Optional[str]:
  for path in sorted(set(stored) | set(wanted)):
    if path not in stored:
      return f'{path} is in this model but not in the checkpoint'
    if path not in wanted:
      return f'{path} is in the checkpoint but not in this model'
    if tuple(stored[path]) != tuple(wanted[path]):
      return (f'{path} has shape {tuple(stored[path])} in the checkpoint but '
              f'{tuple(wanted[path])} in this model')
  return None


def one_replica(tree: Any) -> Any:
  """``tree`` with each fully replicated array of one process replaced by
  its copy on one device (the same buffer: nothing is copied).

  Orbax splits the saving of a replicated array over its replicas, slicing
  every array with a program of its own: with 4 CPU devices (and a loaded
  machine) the first save of 205 small arrays took 11.3 s against 1.0 s from
  one device, and the full-size CDRL CIFAR-10 state has 983 arrays. The
  values saved are the same, and a restore places them on the target's
  devices. Arrays sharded over the devices, and those of multi-process runs,
  are left to orbax.
  """
  if jax.process_count() > 1:
    return tree

  def one(a):
    if isinstance(a, jax.Array) and len(a.devices()) > 1 and (
        a.is_fully_replicated):
      return a.addressable_data(0)
    return a

  return jax.tree_util.tree_map(one, tree)


class Checkpointer:
  """Saves and restores train states under ``<workdir>/checkpoints``.

  Args:
    workdir: the run's directory.
    max_to_keep: number of most recent checkpoints kept.
    subdir: the folder in ``workdir`` (``checkpoints_best`` holds the best
      checkpoint, :mod:`coopjax.trainer.best`); unreadable ones go to
      ``<subdir>_bad``.
  """

  def __init__(self, workdir: str, max_to_keep: int = 3,
               subdir: str = 'checkpoints'):
    self.directory = os.path.abspath(os.path.join(workdir, subdir))
    self.bad_directory = os.path.abspath(os.path.join(workdir,
                                                      f'{subdir}_bad'))
    self.set_aside: List[str] = []
    self._set_aside_partial()
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                             create=True),
        item_handlers=ocp.StandardCheckpointHandler())

  def _move_aside(self, name: str, why: str) -> None:
    """Moves ``checkpoints/<name>`` to ``checkpoints_bad/`` (process 0)."""
    target = os.path.join(self.bad_directory, f'{name}.{int(time.time())}')
    if distributed.is_main():
      epath.Path(self.bad_directory).mkdir(parents=True, exist_ok=True)
      epath.Path(os.path.join(self.directory, name)).rename(target)
      print(f'WARNING: checkpoint {self.directory}/{name} {why}; moved to '
            f'{target}.', file=sys.stderr, flush=True)
    self.set_aside.append(target)

  def _set_aside_partial(self) -> None:
    """Moves half-written checkpoints (unfinished orbax saves) aside."""
    root = epath.Path(self.directory)
    partial = sorted(p.name for p in root.iterdir()
                     if PARTIAL_MARKER in p.name) if root.exists() else []
    for name in partial:
      self._move_aside(name, 'was half-written (its save was interrupted)')
    distributed.sync('coopjax_checkpoint_partial')

  def all_steps(self) -> List[int]:
    return list(self._manager.all_steps())

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def check_compatible(self, step: int, target: Any) -> None:
    """Raises :class:`CheckpointMismatchError` if ``step`` cannot restore ``target``."""
    self._check(step, _paths_shapes(self._manager.item_metadata(step)), target)

  def _check(self, step: int, stored: dict, target: Any) -> None:
    problem = _first_mismatch(stored, _paths_shapes(target))
    if problem:
      raise CheckpointMismatchError(
          f'The checkpoint at {self.directory}/{step} was written by a '
          f'different model: {problem}. Use a fresh --workdir for this config, '
          f'or the config and coopjax version that wrote it (the optimiser '
          f'state became flat vectors on 2026-11-28; the CDRL, CoopFlow and '
          f'latent-flow networks took the authors\' layouts and names on '
          f'2026-11-29). Nothing was overwritten.')

  def restore(self, target: Any, step: Optional[int] = None) -> Any:
    """Restores ``step`` (default: latest) into the structure of ``target``.

    Args:
      target: a train state (or its ``jax.eval_shape``) giving structure,
        shapes, dtypes and shardings.
      step: the step to restore.

    Without ``step``, a latest checkpoint that cannot be read is moved aside
    (see the module doc) and the one before it is tried.

    Returns:
      The restored state, or None if there is no (readable) checkpoint.

    Raises:
      CheckpointMismatchError: the checkpoint is of a different model.
    """
    if step is not None:
      self.check_compatible(step, target)
      return self._restore(step, target)
    while (step := self.latest_step()) is not None:
      try:
        metadata = self._manager.item_metadata(step)
        error = None
      except Exception as e:  # pylint: disable=broad-except
        # orbax and tensorstore raise many types for unreadable files.
        error = e
      if not distributed.any_process(error is not None):
        self._check(step, _paths_shapes(metadata), target)
        try:
          restored, error = self._restore(step, target), None
        except Exception as e:  # pylint: disable=broad-except
          restored, error = None, e
        if not distributed.any_process(error is not None):
          return restored
      self._move_aside(str(step), f'cannot be read ({error!r:.300})')
      distributed.sync(f'coopjax_checkpoint_bad_{step}')
      self._manager.reload()
    return None

  def _restore(self, step: int, target: Any) -> Any:
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
    return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def save(self, step: int, state: Any, force: bool = False) -> None:
    """Saves ``state`` as ``step`` (asynchronously; see :meth:`wait`).

    Raises:
      coopjax.trainer.workdir.WorkdirError: the disk is full or not writable.
    """
    with explain_write_errors(self.directory, f'checkpoint {step}'):
      self._manager.save(step, args=ocp.args.StandardSave(one_replica(state)),
                         force=force)

  def wait(self) -> None:
    """Blocks until pending saves are on disk.

    Raises:
      coopjax.trainer.workdir.WorkdirError: the disk is full or not writable.
    """
    with explain_write_errors(self.directory, 'a checkpoint'):
      self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


def read_latest(workdir: str) -> Tuple[Optional[int], Any]:
  """The latest finished checkpoint of another run's ``workdir``, read-only.

  Unlike :class:`Checkpointer`, nothing in that workdir is created or moved:
  orbax skips half-written saves, and the tree comes back as stored (nested
  dicts of arrays), with no target to check it against.

  Returns:
    ``(step, tree)``, or ``(None, None)`` if ``workdir/checkpoints`` holds no
    finished checkpoint.
  """
  directory = os.path.abspath(os.path.join(workdir, 'checkpoints'))
  if not os.path.isdir(directory):
    return None, None
  manager = ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(create=False,
                                                      read_only=True),
      item_handlers=ocp.StandardCheckpointHandler())
  step = manager.latest_step()
  return (None, None) if step is None else (step, manager.restore(step))
