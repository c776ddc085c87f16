"""Algorithms the trainer can run, by ``config.algorithm``.

Each algorithm object offers ``networks``, ``optimizers``,
``init_variables(key)``, ``grads_fn(params, stats, x, keys)`` (per-device) and
its own sampling and reporting; :mod:`coopjax.train` drives any of them.
"""

from typing import Tuple

ALGORITHMS = ('cdrl', 'drl')


def build(config, example_shape: Tuple[int, ...]):
  """Builds the algorithm named by ``config.algorithm``."""
  if config.algorithm in ('cdrl', 'drl'):
    from coopjax.algorithms.cdrl import CDRLAlgorithm
    return CDRLAlgorithm(config, example_shape)
  raise ValueError(f'Unknown config.algorithm {config.algorithm!r}; known: '
                   f'{", ".join(ALGORITHMS)}.')
