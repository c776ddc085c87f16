"""What the trainer needs of an algorithm: the :class:`Algorithm` protocol.

An algorithm (CDRL / DRL, CoopFlow, the latent flow prior) is built by
:func:`coopjax.registry.build` from ``(config, dataset)``. The trainer
(:mod:`coopjax.trainer.loop`) only calls what is declared here, so a new
algorithm is a class with these members and a line in the registry.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Protocol, Tuple

import jax
import numpy as np
import optax

Params = Any
Metrics = Dict[str, jax.Array]
# (state, key, start) -> (x, aux): ``x`` [num, ...] samples number start ..
# start + num - 1, ``aux`` a dict of arrays indexed by sample first.
Sampler = Callable[[Any, jax.Array], Tuple[jax.Array, Dict[str, jax.Array]]]
# (state, dataset, path_prefix) -> {figure: value}
Task = Callable[[Any, Any, str], Dict[str, float]]


class Algorithm(Protocol):
  """An algorithm as the trainer sees it.

  Attributes:
    config: the run's ConfigDict.
    optimizers: one optax transformation per network, by the name its
      parameters have in ``params`` (e.g. ``{'ebm': ..., 'init': ...}``).
    jit: the algorithm's compiled functions by signature
      (:class:`coopjax.trainer.tasks.JitCache`), shared with the trainer.
  """

  config: Any
  optimizers: Mapping[str, optax.GradientTransformation]
  jit: Any

  def init_variables(self, key: jax.Array,
                     batch: Dict[str, np.ndarray]) -> Tuple[Params, Params]:
    """``(params, stats)`` of a fresh run; ``batch`` (a data batch dict) gives
    shapes and data-dependent initialisation."""

  def grads_fn(self, params: Params, stats: Params, batch: Dict[str, Any],
               keys: jax.Array, step: jax.Array
               ) -> Tuple[Params, Params, Metrics]:
    """One device's ``(grads, new_stats, metrics)``.

    ``batch`` is the device's slice of the batch dict, ``keys`` its ``[B]``
    per-example keys, ``step`` the number of updates made so far (a traced
    int32 scalar). Called under :func:`coopjax.trainer.parallel.make_train_step`,
    which averages the three over devices.
    """

  def sampler(self, num: int, n_steps: Any = None) -> Sampler:
    """``fn(state, key, start) -> (x, aux)`` drawing samples ``start ..
    start + num - 1`` with the EMA parameters, sample ``i`` a function of
    ``key`` and ``i`` only (so the trainer can split the samples over devices
    and chunks, :func:`coopjax.trainer.parallel.shard_sampler`); pure and not
    jitted. ``n_steps`` overrides the model's Langevin steps where it has
    any."""

  def report(self, state: Any, dataset: Any, samples: np.ndarray,
             aux: Dict[str, np.ndarray], path_prefix: str) -> Dict[str, float]:
    """Writes ``<path_prefix>.npz`` and pictures of samples; returns quality
    figures."""

  @property
  def tasks(self) -> Dict[str, Task]:
    """Command-line modes beyond train / sample / eval, by name."""
