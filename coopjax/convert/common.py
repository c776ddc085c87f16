"""Helpers shared by the importers of the authors' PyTorch weights."""

from __future__ import annotations

from typing import Any, Dict, Mapping

import numpy as np


def set_path(tree: Dict[str, Any], path: str, value: np.ndarray) -> None:
  """``tree[a][b][c] = value`` for ``path='a/b/c'``; refuses duplicates."""
  *parents, leaf = path.split('/')
  for p in parents:
    tree = tree.setdefault(p, {})
  if leaf in tree:
    raise ValueError(f'Two PyTorch arrays map to {path!r}.')
  tree[leaf] = np.asarray(value, np.float32)


def conv_kernel(w: np.ndarray) -> np.ndarray:
  """PyTorch ``Conv2d`` weight ``[O, I, kh, kw]`` -> Flax ``[kh, kw, I, O]``;
  a ``ConvTranspose2d`` weight ``[I, O, kh, kw]`` -> ``[kh, kw, I, O]`` is
  :func:`conv_transpose_kernel`."""
  return np.transpose(w, (2, 3, 1, 0))


def conv_transpose_kernel(w: np.ndarray) -> np.ndarray:
  """PyTorch ``ConvTranspose2d`` weight ``[I, O, kh, kw]`` -> ``[kh, kw, I, O]``."""
  return np.transpose(w, (2, 3, 0, 1))


def strip_module(state: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """Drops ``DataParallel``'s ``module.`` prefix from every name."""
  return {(k[len('module.'):] if k.startswith('module.') else k): v
          for k, v in state.items()}


def sub_state(state: Mapping[str, np.ndarray],
              prefix: str) -> Dict[str, np.ndarray]:
  """The entries under ``prefix`` (e.g. ``'ebm_net.'``), prefix removed."""
  out = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
  if not out:
    raise KeyError(f'No arrays named {prefix}*; the checkpoint has '
                   f'{sorted({k.split(".")[0] for k in state})}.')
  return out


def check_shapes(params: Any, wanted: Any, what: str) -> None:
  """Raises ValueError naming the first array whose path or shape differs
  between the converted ``params`` and the module's ``wanted`` shapes."""
  import jax  # pylint: disable=import-outside-toplevel
  got = {jax.tree_util.keystr(p): np.shape(v)
         for p, v in jax.tree_util.tree_leaves_with_path(params)}
  want = {jax.tree_util.keystr(p): tuple(v.shape)
          for p, v in jax.tree_util.tree_leaves_with_path(wanted)}
  for name in sorted(set(got) | set(want)):
    if got.get(name) != want.get(name):
      raise ValueError(
          f'{what}: the converted weights do not fit the config\'s network at '
          f'{name}: checkpoint {got.get(name)}, network {want.get(name)}. '
          f'Check the config (widths, blocks, components) against the '
          f'checkpoint.')
