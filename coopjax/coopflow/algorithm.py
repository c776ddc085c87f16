"""CoopFlow wired for the trainer: config -> model, step, samples, reports, tasks.

The mathematics is in :mod:`coopjax.coopflow` (model, losses, inference).
Config fields read here:

- ``model.ebm`` (``'ebm_res'``, the authors', or ``'convnet'`` for images,
  ``'mlp'`` for 2-D points) and its widths; ``model.flow`` (``'flowpp'``, the
  authors' Flow++, ``'glow'``, a lighter option, or ``'dense'``),
  ``flow_steps``, ``flow_hidden``, ``flow_scales``, ``logit_alpha`` (0:
  none), ``flowpp_*``, ``reference_sampler``, ``dequant_bins`` (0:
  continuous data, or Flow++, which dequantises itself);
- ``model.langevin_steps``, ``step_size``, ``sample_step_size`` (0: the
  same), ``noise_scale``, ``clip_drift``
  (0: none), ``clip_x`` (``()``: none), ``energy_l2`` (0: none);
- ``coopflow.pretrain_flow`` (train only the flow, by maximum likelihood on
  the data), ``coopflow.pretrain_steps`` (CoopFlow(pre) in one run: the first
  updates train only the flow, by maximum likelihood on the data; the flow's
  learning rate can then drop with ``optim.flow.lr_after`` /
  ``lr_after_step``) and ``coopflow.flow_init`` (a workdir whose latest checkpoint's
  flow starts this run: CoopFlow(pre)); ``optim.flow.freeze_steps`` keeps
  that flow fixed for the first updates.

The tasks (:mod:`coopjax.coopflow.tasks`) are ``--mode=reconstruct``,
``interpolate`` and ``inpaint`` for images.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

from coopjax import flows, metrics, plotting
from coopjax.flows.flowpp import FlowPlusPlus
from coopjax.coopflow import tasks as coopflow_tasks
from coopjax.coopflow.losses import loss_and_grads
from coopjax.coopflow.model import (CoopFlowModel, energy, flow_log_prob,
                                    sample)
from coopjax.models import build_ebm
from coopjax.trainer import checkpoint, reports
from coopjax.trainer import state as ts
from coopjax.trainer.tasks import JitCache

FLOWS = ('dense', 'glow', 'flowpp')


def build_flow(cfg, example_shape):
  """The flow named by ``config.model.flow`` for examples of ``example_shape``."""
  if cfg.flow == 'dense':
    if len(example_shape) != 1:
      raise ValueError(f"config.model.flow='dense' is for vectors; the data "
                       f"have shape {example_shape}: use 'glow'.")
    return flows.DenseFlow(features=example_shape[0],
                           num_steps=cfg.flow_steps, hidden=cfg.flow_hidden)
  if cfg.flow == 'glow':
    if len(example_shape) != 3:
      raise ValueError(f"config.model.flow='glow' is for images [H, W, C]; "
                       f"the data have shape {example_shape}: use 'dense'.")
    return flows.GlowFlow(image_shape=tuple(example_shape),
                          num_scales=cfg.flow_scales,
                          steps_per_scale=cfg.flow_steps,
                          hidden=cfg.flow_hidden,
                          logit_alpha=cfg.logit_alpha or None)
  if cfg.flow == 'flowpp':
    if len(example_shape) != 3:
      raise ValueError(f"config.model.flow='flowpp' is for images [H, W, C]; "
                       f"the data have shape {example_shape}: use 'dense'.")
    return FlowPlusPlus(
        image_shape=tuple(example_shape),
        scales=tuple(tuple(s) for s in cfg.flowpp_scales),
        mid_channels=cfg.flow_hidden, num_blocks=cfg.flowpp_blocks,
        num_dequant_blocks=cfg.flowpp_dequant_blocks,
        num_components=cfg.flowpp_components, use_attn=cfg.flowpp_attn,
        dropout=float(cfg.flowpp_dropout),
        reference_sampler=bool(cfg.reference_sampler))
  raise ValueError(f'Unknown config.model.flow {cfg.flow!r}; known: {FLOWS}.')


def build_model(config, example_shape) -> CoopFlowModel:
  """The :class:`coopjax.coopflow.model.CoopFlowModel` of ``config``."""
  m = config.model
  clip_x = tuple(float(v) for v in m.clip_x) or None
  if clip_x is not None and len(clip_x) != 2:
    raise ValueError(f'config.model.clip_x={tuple(m.clip_x)}: give (low, '
                     f'high) or () for no clipping.')
  return CoopFlowModel(
      ebm=build_ebm(m), flow=build_flow(m, tuple(example_shape)),
      example_shape=tuple(example_shape), n_steps=m.langevin_steps,
      step_size=float(m.step_size),
      sample_step_size=float(m.sample_step_size) or None,
      noise_scale=float(m.noise_scale),
      clip_drift=float(m.clip_drift) or None, clip_x=clip_x,
      dequant_bins=int(m.dequant_bins),
      energy_l2=float(m.energy_l2),
      dequant_revised=bool(m.dequant_revised))


def load_flow_params(workdir: str) -> Any:
  """The flow parameters of the latest checkpoint in ``workdir``.

  Raises:
    FileNotFoundError: no checkpoint there.
  """
  step, tree = checkpoint.read_latest(workdir)
  if step is None:
    raise FileNotFoundError(
        f'config.coopflow.flow_init={workdir!r} holds no finished checkpoint '
        f'in {os.path.join(workdir, "checkpoints")}; pretrain the flow there '
        f'first (the config\'s :pretrain variant).')
  return tree['params']['flow']


class CoopFlowAlgorithm:
  """CoopFlow (``algorithm='coopflow'``) for one dataset.

  Args:
    config: the full run config.
    dataset: the training set (gives the example shape).
  """

  def __init__(self, config, dataset):
    self.config = config
    self.example_shape = tuple(dataset.example_shape)
    self.kind = dataset.kind
    self.model = build_model(config, self.example_shape)
    self.pretrain_flow = bool(config.coopflow.pretrain_flow)
    self.pretrain_steps = int(config.coopflow.pretrain_steps)
    if self.pretrain_steps < 0:
      raise ValueError(f'config.coopflow.pretrain_steps must be >= 0, got '
                       f'{self.pretrain_steps}.')
    self.optimizers = {'ebm': ts.make_optimizer(config.optim.ebm),
                       'flow': ts.make_optimizer(config.optim.flow)}
    init = config.coopflow.flow_init
    self._flow_init = load_flow_params(init) if init else None
    self.jit = JitCache()

  def init_variables(self, key: jax.Array, batch: Dict[str, np.ndarray]):
    """``(params, stats)``; the flow's ActNorm is initialised from ``batch``
    (or the flow is loaded from ``coopflow.flow_init``)."""
    k_ebm, k_flow, k_noise = jax.random.split(key, 3)
    x = jnp.asarray(batch['x'], jnp.float32)
    params = {'ebm': self.model.ebm.init(k_ebm, x[:2], jnp.zeros((2,)))[
        'params'], 'flow': self.model.flow.init(
            {'params': k_flow, 'dequant': k_noise}, x)['params']}
    if self._flow_init is not None:
      wanted = jax.tree_util.tree_structure(params['flow'])
      if jax.tree_util.tree_structure(self._flow_init) != wanted:
        raise ValueError(
            f'The flow in config.coopflow.flow_init='
            f'{self.config.coopflow.flow_init!r} does not match this '
            f'config\'s flow (config.model.flow*); pretrain with the same '
            f'model settings.')
      params['flow'] = jax.tree_util.tree_map(jnp.asarray, self._flow_init)
    return params, {}

  def grads_fn(self, params, stats, batch, keys, step):
    """Per-device gradients; see :func:`coopjax.coopflow.losses.loss_and_grads`.

    With ``coopflow.pretrain_steps`` set, updates ``0 .. pretrain_steps - 1``
    (``step`` is the update number) train only the flow by maximum likelihood
    on the data; the cooperative updates follow in the same run.
    """
    pretrain = self.pretrain_flow
    if self.pretrain_steps and not pretrain:
      pretrain = step < self.pretrain_steps
    return loss_and_grads(self.model, params, stats, batch, keys,
                          pretrain_flow=pretrain)

  def sampler(self, num: int, n_steps: Optional[int] = None):
    """``sample(state, key, start) -> (x_K, {'proposal': x_0})`` (EMA
    params): samples ``start .. start + num - 1`` of the sequence ``key``
    defines."""

    def run(state, key, start):
      x, x0 = sample(self.model, state.ema, key, num, n_steps, start=start)
      return x, {'proposal': x0}

    return run

  def _grid_log_densities(self, state, points):
    params = state.ema
    return jnp.stack([
        flow_log_prob(self.model, params['flow'], points),
        energy(self.model, params['ebm'], points)])

  def report(self, state, dataset, samples: np.ndarray, aux: Dict[str, Any],
             path_prefix: str) -> Dict[str, float]:
    """Writes ``<prefix>.npz`` and pictures; returns quality figures."""
    proposals = aux['proposal']
    if self.kind == 'points':
      return self._report_points(state, dataset, samples, proposals,
                                 path_prefix)
    out = reports.image_report(self.config, dataset, samples, path_prefix,
                               levels=samples[:, None],
                               proposals=proposals[:, None],
                               level_titles=['langevin'])
    flow_figures = reports.quality(self.config, dataset, proposals,
                                   path_prefix)
    out.update({f'{k}_flow': v for k, v in flow_figures.items()})
    return out

  def _report_points(self, state, dataset, samples, proposals, path_prefix):
    """2-D data: npz with ``x`` (revised), ``proposal``, ``density`` (the
    EBM's, normalised over ``grid``), ``density_flow``, ``grid``; a PNG with
    the flow and the EBM side by side; TV figures."""
    grid = metrics.fine_grid(dataset, self.config.sample.grid_k)
    densities = self.jit('grid_log_densities', self._grid_log_densities)
    logd = np.asarray(densities(state, jnp.asarray(grid.reshape(-1, 2))))
    logd = logd.reshape((2,) + grid.shape[:2])
    dens = [metrics.grid_probs(l, l.shape[0]) for l in logd]
    np.savez(path_prefix + '.npz', x=samples, proposal=proposals,
             density=dens[1], density_flow=dens[0], grid=grid)
    figures = {'tv_samples': metrics.sample_tv(samples, dataset),
               'tv_samples_flow': metrics.sample_tv(proposals, dataset),
               'tv_density': metrics.density_tv(logd[1], dataset),
               'tv_density_flow': metrics.density_tv(logd[0], dataset)}
    plotting.plot_levels(
        path_prefix + '.png', logd, np.stack([proposals, samples]), grid,
        dataset.box,
        ['flow proposal', f'EBM revision (K={self.model.n_steps})'],
        data=dataset.points,
        title=reports.figure_title(self.config, dataset.name, path_prefix,
                                   figures, 'flow and EBM'))
    return figures

  @property
  def tasks(self):
    """CLI modes beyond train/sample/eval: ``{name: fn(state, dataset, prefix)}``."""
    return coopflow_tasks.tasks_for(self)
