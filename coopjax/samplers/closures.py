"""Callables as pytrees, so that a new closure does not recompile a jitted chain.

A jitted function that takes a callable as a static argument compiles again for
every new function object, e.g. ``lambda x: log_prob(x, params)`` built anew at
each call. :func:`as_pytree` turns such a callable into a pytree whose *leaves*
are the arrays it closes over and whose *structure* (part of the jit cache key)
is everything else: the code, the globals, and the non-array values it closes
over, compared by value when hashable and by identity otherwise. A new closure
of the same code over new arrays of the same shapes then reuses the compiled
chain; a new closure over a different Python number (e.g. a float) compiles
again, as that number is a compile-time constant.

Understood: plain functions and lambdas (their closure cells and defaults),
:class:`functools.partial` (and :class:`jax.tree_util.Partial`), bound methods,
each recursively. A closed-over value with no arrays inside is kept as it
is (a list the function appends to stays the caller's list); one with arrays
is rebuilt around the traced arrays. Functions that carry attributes (e.g.
from :func:`functools.wraps`) and anything else (a jitted function, a
callable object) are kept whole as static, compared by value if hashable,
otherwise by identity: a new one of those compiles again.
"""

from __future__ import annotations

import functools
import types
from typing import Any, Callable, List, Tuple

import jax
import numpy as np


class _Static:
  """Hashable wrapper: equality by value when the object is hashable, else identity."""

  __slots__ = ('obj', 'by_value', 'hash')

  def __init__(self, obj: Any):
    self.obj = obj
    try:
      self.hash = hash((type(obj), obj))
      self.by_value = True
    except TypeError:
      self.hash = id(obj)
      self.by_value = False

  def __hash__(self) -> int:
    return self.hash

  def __eq__(self, other: Any) -> bool:
    if not isinstance(other, _Static):
      return False
    if self.obj is other.obj:
      return True
    if not (self.by_value and other.by_value) or (type(self.obj) is not
                                                  type(other.obj)):
      return False
    try:
      return bool(self.obj == other.obj)
    except Exception:  # pylint: disable=broad-except
      return False


def _is_array(x: Any) -> bool:
  return isinstance(x, (jax.Array, np.ndarray, np.generic))


_EMPTY_CELL = ('empty-cell',)


def _split_value(v: Any, leaves: List[Any], depth: int) -> Any:
  """Spec of a value a callable holds; its arrays are appended to ``leaves``."""
  if isinstance(v, (types.FunctionType, functools.partial, types.MethodType)):
    return ('callable', _split(v, leaves, depth + 1))
  flat, treedef = jax.tree.flatten(v)
  if not any(_is_array(x) for x in flat):
    # Kept whole (not rebuilt): a closed-over list a function appends to
    # stays the caller's list.
    return ('value', _Static(v))
  parts = []
  for x in flat:
    if _is_array(x):
      leaves.append(x)
      parts.append(None)
    else:
      parts.append(_Static(x))
  return ('tree', treedef, tuple(parts))


def _split(fn: Any, leaves: List[Any], depth: int = 0) -> Any:
  """Spec (hashable) of callable ``fn``; its arrays are appended to ``leaves``."""
  if depth > 20:
    return ('static', _Static(fn))
  if isinstance(fn, types.FunctionType) and not fn.__dict__:
    cells = []
    for cell in fn.__closure__ or ():
      try:
        content = cell.cell_contents
      except ValueError:
        cells.append(_EMPTY_CELL)
        continue
      cells.append(('self',) if content is fn else
                   _split_value(content, leaves, depth))
    defaults = tuple(_split_value(d, leaves, depth)
                     for d in fn.__defaults__ or ())
    kwdefaults = tuple((k, _split_value(d, leaves, depth))
                       for k, d in sorted((fn.__kwdefaults__ or {}).items()))
    return ('function', fn.__code__, _Static(fn.__globals__), fn.__name__,
            fn.__qualname__, defaults, kwdefaults, tuple(cells))
  if isinstance(fn, functools.partial) and type(fn) in (functools.partial,
                                                        jax.tree_util.Partial):
    return ('partial', _split_value(fn.func, leaves, depth),
            tuple(_split_value(a, leaves, depth) for a in fn.args),
            tuple((k, _split_value(a, leaves, depth))
                  for k, a in sorted(fn.keywords.items())))
  if isinstance(fn, types.MethodType):
    return ('method', _split_value(fn.__func__, leaves, depth),
            _split_value(fn.__self__, leaves, depth))
  return ('static', _Static(fn))


def _build_value(spec: Any, leaves) -> Any:
  if spec[0] == 'callable':
    return _build(spec[1], leaves)
  if spec[0] == 'value':
    return spec[1].obj
  _, treedef, parts = spec
  return treedef.unflatten([next(leaves) if p is None else p.obj
                            for p in parts])


def _build(spec: Any, leaves) -> Any:
  """Inverse of :func:`_split`: the callable, with ``leaves`` in place of its arrays."""
  kind = spec[0]
  if kind == 'static':
    return spec[1].obj
  if kind == 'function':
    _, code, glob, name, qualname, defaults, kwdefaults, cells = spec
    contents = [None if c in (_EMPTY_CELL, ('self',)) else
                _build_value(c, leaves) for c in cells]
    new_cells = tuple(types.CellType() if c == _EMPTY_CELL else
                      types.CellType(v) for c, v in zip(cells, contents))
    fn = types.FunctionType(code, glob.obj, name,
                            tuple(_build_value(d, leaves) for d in defaults)
                            or None, new_cells)
    for c, cell in zip(cells, new_cells):
      if c == ('self',):
        cell.cell_contents = fn
    fn.__qualname__ = qualname
    if kwdefaults:
      fn.__kwdefaults__ = {k: _build_value(d, leaves) for k, d in kwdefaults}
    return fn
  if kind == 'partial':
    _, func, args, keywords = spec
    return functools.partial(_build_value(func, leaves),
                             *(_build_value(a, leaves) for a in args),
                             **{k: _build_value(a, leaves)
                                for k, a in keywords})
  _, func, obj = spec
  return types.MethodType(_build_value(func, leaves),
                          _build_value(obj, leaves))


@jax.tree_util.register_pytree_node_class
class PytreeCallable:
  """A callable whose closed-over arrays are pytree leaves (see :func:`as_pytree`)."""

  def __init__(self, spec: Any, leaves: Tuple[Any, ...]):
    self.spec = spec
    self.leaves = tuple(leaves)

  def tree_flatten(self):
    return self.leaves, self.spec

  @classmethod
  def tree_unflatten(cls, spec, leaves):
    return cls(spec, leaves)

  @property
  def fn(self) -> Callable[..., Any]:
    """The callable, rebuilt around the current leaves."""
    return _build(self.spec, iter(self.leaves))

  def __call__(self, *args, **kwargs):
    return self.fn(*args, **kwargs)


def as_pytree(fn: Callable[..., Any]) -> PytreeCallable:
  """``fn`` as a pytree: arrays it closes over are leaves, the rest is structure.

  Pass the result as an ordinary (not static) argument of a jitted function:
  calls with new closures of the same code over same-shaped arrays hit the
  jit cache. Calling the result calls ``fn``.
  """
  if isinstance(fn, PytreeCallable):
    return fn
  if not callable(fn):
    raise TypeError(f'expected a callable, got {type(fn).__name__}.')
  leaves: List[Any] = []
  spec = _split(fn, leaves)
  return PytreeCallable(spec, tuple(leaves))
