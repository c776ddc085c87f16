"""Helpers shared by the tests.

``tests/`` is on ``sys.path`` (``pythonpath`` in pyproject's pytest section), so
test files import these as ``helpers`` and ``helpers.<module>``.
"""

import functools
import importlib.util
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CONFIGS = os.path.join(REPO, 'configs')


@functools.lru_cache(maxsize=None)
def config_module(name: str):
  """``configs/<name>.py`` loaded by its path, as ``--config`` loads it."""
  spec = importlib.util.spec_from_file_location(
      f'config_{name}', os.path.join(CONFIGS, f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_config(name: str, variant: str = ''):
  """``get_config(variant)`` of ``configs/<name>.py``; no argument for ''."""
  module = config_module(name)
  return module.get_config(variant) if variant else module.get_config()


def matmul_dtypes(fn, *args):
  """``(primitive, operand dtypes)`` of every dot and convolution in
  ``fn(*args)``'s jaxpr (nested jaxprs included), e.g. to check that a
  ``dtype='bfloat16'`` network really convolves in bfloat16."""
  import jax  # pylint: disable=g-import-not-at-top

  found = []

  def walk(jaxpr):
    for eqn in jaxpr.eqns:
      if eqn.primitive.name in ('dot_general', 'conv_general_dilated'):
        found.append((eqn.primitive.name,
                      tuple(str(v.aval.dtype) for v in eqn.invars)))
      for p in eqn.params.values():
        for sub in (p if isinstance(p, (list, tuple)) else (p,)):
          sub = getattr(sub, 'jaxpr', sub)  # a ClosedJaxpr's Jaxpr
          if hasattr(sub, 'eqns'):
            walk(sub)

  walk(jax.make_jaxpr(fn)(*args).jaxpr)
  return found
