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
