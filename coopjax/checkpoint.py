"""Orbax checkpoints of a :class:`~coopjax.train_state.TrainState`.

The workdir's ``checkpoints/`` folder holds one orbax step directory per
save. Before restoring, the stored tree is compared with the state the current
config builds: a checkpoint of a different model stops the run with a message
naming the first mismatching array, and nothing is written.
"""

from __future__ import annotations

import os
from typing import Any, List, Optional

import jax
import orbax.checkpoint as ocp


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


class Checkpointer:
  """Saves and restores train states under ``<workdir>/checkpoints``.

  Args:
    workdir: the run's directory.
    max_to_keep: number of most recent checkpoints kept.
  """

  def __init__(self, workdir: str, max_to_keep: int = 3):
    self.directory = os.path.abspath(os.path.join(workdir, 'checkpoints'))
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                             create=True),
        item_handlers=ocp.StandardCheckpointHandler())

  def all_steps(self) -> List[int]:
    return list(self._manager.all_steps())

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def check_compatible(self, step: int, target: Any) -> None:
    """Raises :class:`CheckpointMismatchError` if ``step`` cannot restore ``target``."""
    stored = _paths_shapes(self._manager.item_metadata(step))
    wanted = _paths_shapes(target)
    problem = _first_mismatch(stored, wanted)
    if problem:
      raise CheckpointMismatchError(
          f'The checkpoint at {self.directory}/{step} was written by a '
          f'different model: {problem}. Use a fresh --workdir for this config, '
          f'or the config that wrote it. Nothing was overwritten.')

  def restore(self, target: Any, step: Optional[int] = None) -> Any:
    """Restores ``step`` (default: latest) into the structure of ``target``.

    Args:
      target: a train state (or its ``jax.eval_shape``) giving structure,
        shapes, dtypes and shardings.
      step: the step to restore.

    Returns:
      The restored state, or None if there is no checkpoint.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      return None
    self.check_compatible(step, target)
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
    return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def save(self, step: int, state: Any, force: bool = False) -> None:
    """Saves ``state`` as ``step`` (asynchronously; see :meth:`wait`)."""
    self._manager.save(step, args=ocp.args.StandardSave(state), force=force)

  def wait(self) -> None:
    """Blocks until pending saves are on disk."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
