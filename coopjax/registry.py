"""The algorithms the trainer can run, by ``config.algorithm``.

Each is a class implementing :class:`coopjax.trainer.protocol.Algorithm`,
built from ``(config, dataset)``; its module is imported only when the
algorithm is asked for, so the trainer does not import the algorithms (which
import the trainer's helpers).
"""

from __future__ import annotations

import importlib

# config.algorithm -> (module, class)
ALGORITHMS = {
    'cdrl': ('coopjax.cdrl.algorithm', 'CDRLAlgorithm'),
    'drl': ('coopjax.cdrl.algorithm', 'CDRLAlgorithm'),
    'coopflow': ('coopjax.coopflow.algorithm', 'CoopFlowAlgorithm'),
    'latent_flow': ('coopjax.latent_flow.algorithm', 'LatentFlowAlgorithm'),
}


def build(config, dataset):
  """Builds the algorithm named by ``config.algorithm`` for ``dataset``.

  Raises:
    ValueError: an unknown ``config.algorithm``, naming the known ones.
  """
  name = config.algorithm
  if name not in ALGORITHMS:
    raise ValueError(f'Unknown config.algorithm {name!r}; known: '
                     f'{", ".join(ALGORITHMS)}.')
  module, cls = ALGORITHMS[name]
  return getattr(importlib.import_module(module), cls)(config, dataset)
