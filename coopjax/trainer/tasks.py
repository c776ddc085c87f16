"""What every algorithm's command-line tasks share, written once.

A task is ``fn(algo, state, dataset, prefix) -> {figure: value}``; an
algorithm exposes its tasks bound to itself with :func:`bind`. Helpers here:
caching of jitted functions (:class:`JitCache`), the task's random key
(:func:`task_key`), drawing samples in chunks (:func:`sample_in_chunks`),
applying a per-example function in chunks (:func:`map_in_chunks`) and the
side-by-side picture rows of reconstruction and inpainting
(:func:`save_side_by_side`).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Dict, Hashable, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from coopjax import plotting, rng
from coopjax.trainer.reports import LABELLED_TILE, zoom_for

# (algo, state, dataset, prefix) -> {figure: value}
TaskFn = Callable[..., Dict[str, Any]]
# Examples shown by save_side_by_side.
SHOWN = 16


class JitCache:
  """Jitted functions of one algorithm, compiled once per signature.

  ``cache(sig, fn)`` returns ``jax.jit(fn)`` for the ``fn`` given the first
  time ``sig`` (any hashable naming everything ``fn`` closes over: sample
  count, step count, flags) is asked for; later calls with the same ``sig``
  return that compiled function and ignore their ``fn``.
  """

  def __init__(self):
    self._fns: Dict[Hashable, Callable] = {}

  def __call__(self, sig: Hashable, fn: Callable) -> Callable:
    if sig not in self._fns:
      self._fns[sig] = jax.jit(fn)
    return self._fns[sig]


def bind(algo, tasks: Sequence[Tuple[str, TaskFn]]) -> Dict[str, Callable]:
  """``{name: fn(state, dataset, prefix)}`` with ``algo`` bound."""
  return {name: functools.partial(fn, algo) for name, fn in tasks}


def task_key(algo, state, salt: int) -> jax.Array:
  """The key of a task on ``state``: a function of the seed, the step and
  ``salt`` (one per task), so rerunning a task reproduces it."""
  return rng.task_key(algo.config.seed, state.step, salt)


def sample_in_chunks(sampler_fn: Callable, state: Any, key: jax.Array,
                     total: int, chunk: int,
                     to_host: Callable = jax.device_get):
  """Runs a ``(state, key, start) -> (x, aux)`` sampler of ``chunk`` samples
  until ``total`` are drawn (chunk ``i`` starts at sample ``i * chunk``).

  Sample ``j`` depends only on ``key`` and ``j``, so the result does not
  depend on ``chunk``. ``aux`` is a dict of arrays with the sample index
  first; everything is concatenated on that axis and returned as numpy
  (``to_host`` fetches each chunk).
  """
  parts = []
  for start in range(0, total, chunk):
    parts.append(to_host(sampler_fn(state, key, start)))
  return jax.tree_util.tree_map(lambda *a: np.concatenate(a)[:total], *parts)


def map_in_chunks(fn: Callable, key: jax.Array, chunk: int, *arrays):
  """Applies ``fn(*chunks, keys)`` over the leading axis in chunks.

  Example ``i`` gets the key ``fold_in(key, i)`` whatever the chunk size.
  Returns numpy (a tuple if ``fn`` returns one).
  """
  parts = []
  for i in range(0, len(arrays[0]), chunk):
    pieces = [jnp.asarray(a[i:i + chunk]) for a in arrays]
    keys = rng.example_keys(key, i, len(pieces[0]))
    parts.append(jax.device_get(fn(*pieces, keys)))
  return jax.tree_util.tree_map(lambda *a: np.concatenate(a), *parts)


def save_side_by_side(path: str, columns: Sequence[np.ndarray],
                      num: int = SHOWN,
                      titles: Optional[Sequence[str]] = None,
                      title: str = '') -> None:
  """A PNG of ``columns[0][i], columns[1][i], ...`` side by side for the
  first ``num`` examples, two examples a row (e.g. observed, filled, true).

  ``titles`` names the columns (drawn above them) and ``title`` the figure;
  NaN pixels (hidden by a mask, see ``coopjax.data.masks.shown``) are drawn
  magenta, and the figure says so.
  """
  grid = np.stack([np.asarray(c)[:num] for c in columns], axis=1)
  images = grid.reshape((-1,) + grid.shape[2:])
  hidden = bool(np.isnan(images).any())
  plotting.save_labelled_grid(
      path, images, ncol=2 * len(columns),
      zoom=max(zoom_for(np.asarray(columns[0])),
               -(-LABELLED_TILE // images.shape[1])),
      title=title or (f'{os.path.splitext(os.path.basename(path))[0]}: two '
                      f'examples a row'),
      col_labels=None if titles is None else list(titles) * 2,
      note='magenta: hidden pixels' if hidden else '')
