"""Step-indexed batches: which examples step ``n`` trains on, on which process.

A batch is a function of ``(seed, step)`` only, so a resumed run sees exactly
the batches an uninterrupted one would, and the processes' slices of the
global batch concatenate to the one-process batch.
"""

from __future__ import annotations

from typing import Any, Dict, Union

import numpy as np

Arrays = Union[np.ndarray, Dict[str, np.ndarray]]


def check_split(batch_size: int, n: int, seed: int, step: int,
                process_index: int, process_count: int) -> None:
  """Raises ValueError naming the argument that makes a batch impossible."""
  if batch_size < 1 or batch_size > n:
    raise ValueError(f"batch_size={batch_size} must be in [1, {n}] (the number "
                     "of examples) for sampling without replacement.")
  if process_count < 1 or batch_size % process_count:
    raise ValueError(f"batch_size={batch_size} is not divisible by "
                     f"process_count={process_count}.")
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index={process_index} is outside "
                     f"[0, process_count={process_count}).")
  if seed < 0 or step < 0:
    raise ValueError(f"seed={seed} and step={step} must be >= 0.")


def local_indices(n: int, step: int, batch_size: int, seed: int,
                  process_index: int = 0, process_count: int = 1) -> np.ndarray:
  """Indices into ``n`` examples of this process's share of step ``step``'s batch.

  The global batch is ``batch_size`` indices drawn without replacement by
  ``np.random.default_rng([seed, step])``; process ``i`` gets rows
  ``[i * B / P, (i + 1) * B / P)`` of it.
  """
  check_split(batch_size, n, seed, step, process_index, process_count)
  idx = np.random.default_rng([int(seed), int(step)]).choice(
      n, size=batch_size, replace=False)
  per = batch_size // process_count
  return idx[process_index * per:(process_index + 1) * per]


def take(arrays: Arrays, idx: np.ndarray) -> Any:
  """``arrays[idx]`` for an array or every array of a dict."""
  if isinstance(arrays, dict):
    return {k: v[idx] for k, v in arrays.items()}
  return arrays[idx]


def batch_at(points: np.ndarray, step: int, batch_size: int, seed: int,
             process_index: int = 0, process_count: int = 1) -> np.ndarray:
  """This process's share of the global batch of step ``step`` of ``points``.

  Args:
    points: ``[N, ...]`` training set.
    step: training step, >= 0.
    batch_size: global batch size, divisible by ``process_count``, <= N.
    seed: data seed, >= 0.
    process_index: this process, in ``[0, process_count)``.
    process_count: number of processes sharing the batch.

  Returns:
    ``[batch_size // process_count, ...]`` float32 rows of the global batch.

  Raises:
    ValueError: any argument outside the ranges above.
  """
  idx = local_indices(len(points), step, batch_size, seed, process_index,
                      process_count)
  return np.asarray(points[idx], dtype=np.float32)
