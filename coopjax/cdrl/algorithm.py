"""CDRL / DRL wired for the trainer: config -> model, state, step, samples, reports.

The mathematics is in :mod:`coopjax.cdrl` (model, sampling, losses); this
module only builds it from a config and turns samples into files and figures,
as the :class:`coopjax.trainer.protocol.Algorithm` protocol asks. The
downstream tasks (guidance, composition, inpainting, OOD, fewer steps) are in
:mod:`coopjax.cdrl.tasks`.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

from coopjax import metrics, plotting
from coopjax.cdrl import conditioning, schedules, tasks as cdrl_tasks
from coopjax.cdrl.losses import loss_and_grads
from coopjax.cdrl.model import CDRLModel, log_density
from coopjax.cdrl.sampling import sample
from coopjax.models import build_ebm, build_initializer
from coopjax.trainer import reports
from coopjax.trainer import state as ts
from coopjax.trainer.tasks import JitCache


class CDRLAlgorithm:
  """CDRL (``algorithm='cdrl'``) or DRL (``'drl'``) for one dataset.

  Args:
    config: the full run config.
    dataset: the training set (gives the example shape and classes).
  """

  def __init__(self, config, dataset):
    self.config = config
    self.example_shape = tuple(dataset.example_shape)
    self.kind = dataset.kind
    init_conditional = bool(config.model.init_conditional)
    initializer = build_initializer(
        config.model if init_conditional else _unconditional(config.model))
    if config.algorithm == 'drl' and initializer is not None:
      raise ValueError("config.algorithm='drl' has no initializer: set "
                       "config.model.initializer='none'.")
    if config.algorithm == 'cdrl' and initializer is None:
      raise ValueError("config.algorithm='cdrl' needs an initializer; "
                       "config.model.initializer='none' is the DRL baseline "
                       "(config.algorithm='drl').")
    num_classes = int(config.model.num_classes)
    if num_classes:
      wanted = _model_classes(dataset)
      if wanted != num_classes:
        raise ValueError(
            f'config.model.num_classes={num_classes} but dataset '
            f'{dataset.name!r} gives {wanted} labels (classes, or 2 per '
            f'binary attribute); set it to {wanted} or to 0 (unconditional).')
    self.model = CDRLModel(
        ebm=build_ebm(config.model), initializer=initializer,
        levels=schedules.levels_from_config(config.schedule),
        n_steps=config.model.langevin_steps, tweedie=config.model.tweedie,
        final_denoise=bool(config.model.final_denoise),
        num_classes=num_classes,
        label_drop=float(config.model.label_drop),
        level_input=config.model.level_input,
        pair_noise=config.model.pair_noise,
        init_conditional=init_conditional,
        sample_noise=float(config.model.sample_noise),
        clean_level_share=float(config.model.clean_level_share))
    self.optimizers = {'ebm': ts.make_optimizer(config.optim.ebm)}
    if initializer is not None:
      self.optimizers['init'] = ts.make_optimizer(config.optim.init)
    self.jit = JitCache()

  def init_variables(self, key: jax.Array, batch: Dict[str, np.ndarray]):
    """``(params, stats)`` dicts for a fresh run (``batch`` gives shapes)."""
    k_ebm, k_init = jax.random.split(key)
    x = jnp.zeros((2,) + self.example_shape, jnp.float32)
    logsnr = jnp.zeros((2,), jnp.float32)
    kwargs = {}
    if self.model.num_classes:
      kwargs['label'] = jnp.zeros((2,), jnp.int32)
    ebm_vars = self.model.ebm.init(k_ebm, x, logsnr, **kwargs)
    params = {'ebm': ebm_vars['params']}
    stats = {'ebm': ebm_vars.get('batch_stats', {})}
    if self.model.initializer is not None:
      params['init'] = self.model.initializer.init(
          k_init, x, logsnr, **(kwargs if self.model.label_init else {})
      )['params']
    return params, stats

  def grads_fn(self, params, stats, batch, keys, step):
    """Per-device gradients; see :func:`coopjax.cdrl.losses.loss_and_grads`."""
    del step  # CDRL's loss does not change with training time.
    return loss_and_grads(self.model, params, stats, batch, keys)

  def ebm_vars(self, state: ts.TrainState, ema: bool = True) -> Dict[str, Any]:
    params = state.ema if ema else state.params
    return {'params': params['ebm'], 'batch_stats': state.stats['ebm']}

  def default_condition(self, num: int, start: Any = 0):
    """Classes cycling over the batch at ``config.sample.guidance`` (conditional
    models), or None."""
    if not self.model.num_classes:
      return None
    labels = (jnp.arange(num) + start) % self.model.num_classes + 1
    return conditioning.guided(labels, self.config.sample.guidance)

  def sampler(self, num: int, n_steps: Optional[int] = None):
    """``sample(state, key, start) -> (x, aux)`` with the EMA params.

    Draws samples ``start .. start + num - 1`` of the sequence ``key``
    defines (sample ``i`` depends only on ``key`` and ``i``); ``aux`` holds
    ``levels`` and ``proposals``, ``[num, T, ...]`` each.
    """

    def run(state, key, start):
      x, trace = sample(self.model, self.ebm_vars(state),
                        state.ema.get('init'), key, num, self.example_shape,
                        n_steps, start=start,
                        cond=self.default_condition(num, start))
      return x, {'levels': jnp.swapaxes(trace.levels, 0, 1),
                 'proposals': jnp.swapaxes(trace.proposals, 0, 1)}

    return run

  def _all_levels_log_density(self, state, x):
    levels = jnp.arange(self.model.num_levels, 0, -1)
    return jax.lax.map(
        lambda t: log_density(self.model, self.ebm_vars(state), x, t),
        levels)

  def level_log_densities(self, state: ts.TrainState,
                          points: np.ndarray) -> np.ndarray:
    """``[T, P]`` log-densities of every level's EBM at ``points`` (EMA), level T first."""
    fn = self.jit('level_log_densities', self._all_levels_log_density)
    return np.asarray(fn(state, jnp.asarray(points, jnp.float32)))

  def report(self, state, dataset, samples: np.ndarray, aux: Dict[str, Any],
             path_prefix: str) -> Dict[str, float]:
    """Writes ``<prefix>.npz`` and pictures; returns quality figures."""
    if self.kind == 'points':
      return self._report_points(state, dataset, samples,
                                 np.swapaxes(aux['levels'], 0, 1), path_prefix)
    titles = [f'level {t}' for t in range(self.model.num_levels, 0, -1)]
    return reports.image_report(self.config, dataset, samples, path_prefix,
                                levels=aux['levels'],
                                proposals=aux['proposals'],
                                level_titles=titles)

  def _report_points(self, state, dataset, samples, levels, path_prefix):
    """2-D data: npz with ``x``, ``density`` (level 1, normalised over ``grid``),
    ``grid``, ``levels``; a PNG per level; TV figures."""
    grid = metrics.fine_grid(dataset, self.config.sample.grid_k)
    flat = grid.reshape(-1, 2)
    logd = self.level_log_densities(state, flat).reshape(
        (-1,) + grid.shape[:2])
    density = np.exp(logd[-1] - logd[-1].max())
    density /= density.sum()
    np.savez(path_prefix + '.npz', x=samples, density=density, grid=grid,
             levels=levels)
    titles = [f'level {t}' for t in range(self.model.num_levels, 0, -1)]
    figures = {'tv_samples': metrics.sample_tv(samples, dataset),
               'tv_density': metrics.density_tv(logd[-1], dataset)}
    plotting.plot_levels(
        path_prefix + '.png', logd, levels, grid, dataset.box, titles,
        data=dataset.points,
        title=reports.figure_title(self.config, dataset.name, path_prefix,
                                   figures, 'levels, noisiest first'))
    return figures

  @property
  def tasks(self):
    """CLI modes beyond train/sample/eval: ``{name: fn(state, dataset, prefix)}``."""
    return cdrl_tasks.tasks_for(self)


def _unconditional(model_cfg):
  """``config.model`` with ``num_classes=0``: builds an unconditional network."""
  cfg = model_cfg.copy_and_resolve_references()
  with cfg.unlocked():
    cfg.num_classes = 0
  return cfg


def _model_classes(dataset) -> int:
  attributes = getattr(dataset, 'attributes', None)
  return 2 * len(attributes) if attributes else dataset.num_classes
