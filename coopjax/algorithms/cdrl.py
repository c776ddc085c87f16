"""CDRL / DRL wired for the trainer: config -> model, state, step, samples, reports.

The mathematics is in :mod:`coopjax.cdrl`; this module only builds it from a
config and turns samples into files and figures.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from coopjax import cdrl, metrics, plotting, schedules
from coopjax import train_state as ts
from coopjax.models import build_ebm, build_initializer


class CDRLAlgorithm:
  """CDRL (``algorithm='cdrl'``) or DRL (``'drl'``) for one data shape.

  Args:
    config: the full run config.
    example_shape: shape of one data example, e.g. ``(2,)``.
  """

  networks = ('ebm', 'init')

  def __init__(self, config, example_shape: Tuple[int, ...]):
    self.config = config
    self.example_shape = tuple(example_shape)
    initializer = build_initializer(config.model)
    if config.algorithm == 'drl' and initializer is not None:
      raise ValueError("config.algorithm='drl' has no initializer: set "
                       "config.model.initializer='none'.")
    if config.algorithm == 'cdrl' and initializer is None:
      raise ValueError("config.algorithm='cdrl' needs an initializer; "
                       "config.model.initializer='none' is the DRL baseline "
                       "(config.algorithm='drl').")
    self.model = cdrl.CDRLModel(
        ebm=build_ebm(config.model), initializer=initializer,
        levels=schedules.levels_from_config(config.schedule),
        n_steps=config.model.langevin_steps, tweedie=config.model.tweedie)
    self.optimizers = {'ebm': ts.make_optimizer(config.optim.ebm)}
    if initializer is not None:
      self.optimizers['init'] = ts.make_optimizer(config.optim.init)
    self._samplers = {}
    self._log_densities = jax.jit(self._all_levels_log_density)

  def init_variables(self, key: jax.Array):
    """``(params, stats)`` dicts for a fresh run."""
    k_ebm, k_init = jax.random.split(key)
    x = jnp.zeros((2,) + self.example_shape, jnp.float32)
    logsnr = jnp.zeros((2,), jnp.float32)
    ebm_vars = self.model.ebm.init(k_ebm, x, logsnr)
    params = {'ebm': ebm_vars['params']}
    stats = {'ebm': ebm_vars.get('batch_stats', {})}
    if self.model.initializer is not None:
      params['init'] = self.model.initializer.init(k_init, x, logsnr)['params']
    return params, stats

  def grads_fn(self, params, stats, x, keys):
    """Per-device gradients; see :func:`coopjax.cdrl.loss_and_grads`."""
    return cdrl.loss_and_grads(self.model, params, stats, x, keys)

  def ebm_vars(self, state: ts.TrainState, ema: bool = True) -> Dict[str, Any]:
    params = state.ema if ema else state.params
    return {'params': params['ebm'], 'batch_stats': state.stats['ebm']}

  def sampler(self, num: int, n_steps: Optional[int] = None):
    """A jitted ``sample(state, key) -> (x, levels)`` using the EMA params.

    Compiled once per ``(num, n_steps)`` and reused.
    """
    if (num, n_steps) not in self._samplers:

      def run(state, key):
        return cdrl.sample(self.model, self.ebm_vars(state),
                           state.ema.get('init'), key, num, self.example_shape,
                           n_steps)

      self._samplers[(num, n_steps)] = jax.jit(run)
    return self._samplers[(num, n_steps)]

  def _all_levels_log_density(self, state, x):
    levels = jnp.arange(self.model.num_levels, 0, -1)
    return jax.lax.map(
        lambda t: cdrl.log_density(self.model, self.ebm_vars(state), x, t),
        levels)

  def level_log_densities(self, state: ts.TrainState,
                          points: np.ndarray) -> np.ndarray:
    """``[T, P]`` log-densities of every level's EBM at ``points`` (EMA), level T first."""
    return np.asarray(self._log_densities(state,
                                          jnp.asarray(points, jnp.float32)))

  def report_points(self, state, dataset, samples: np.ndarray,
                    levels: np.ndarray, path_prefix: str) -> Dict[str, float]:
    """Writes ``<prefix>.npz`` and ``<prefix>.png`` for 2-D data; returns TVs.

    The npz holds ``x`` (final samples), ``density`` (the level-1 EBM's density
    normalised over ``grid``), ``grid`` and ``levels`` (samples per level).
    """
    grid = metrics.fine_grid(dataset, self.config.sample.grid_k)
    flat = grid.reshape(-1, 2)
    logd = self.level_log_densities(state, flat).reshape(
        (-1,) + grid.shape[:2])
    density = np.exp(logd[-1] - logd[-1].max())
    density /= density.sum()
    np.savez(path_prefix + '.npz', x=samples, density=density, grid=grid,
             levels=levels)
    titles = [f'level {t}' for t in range(self.model.num_levels, 0, -1)]
    plotting.plot_levels(path_prefix + '.png', logd, levels, grid, dataset.box,
                         titles)
    return {'tv_samples': metrics.sample_tv(samples, dataset),
            'tv_density': metrics.density_tv(logd[-1], dataset)}
