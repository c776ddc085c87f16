"""CoopFlow's tasks as CLI modes: ``--mode=reconstruct|interpolate|inpaint``.

Each task is ``(algo, state, dataset, prefix) -> {figure: value}`` on the EMA
parameters of a trained model; it writes ``<prefix>.npz`` and
``<prefix>.png``. The mathematics is in :mod:`coopjax.coopflow.inference`; settings come
from ``config.task``:

- ``num``: test images per task;
- ``recon_space``: ``'x0'`` (the authors': gradient descent on the chain's
  start, learning rate ``recon_lr`` times ``recon_decay ** j``; inpainting
  uses ``inpaint_lr`` and ``inpaint_decay``) or ``'latent'`` (Adam on the
  flow latent through the unrolled, clipped chain, lr ``recon_lr``);
- ``recon_iters``: iterations (reconstruction and inpainting);
- ``interp_points``: images per interpolation strip;
- ``mask``: ``'square'``, ``'half'`` or ``'free'`` (:mod:`coopjax.data.masks`).

(Synthesis is ``--mode=sample``.)
"""

from __future__ import annotations

import os
from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np

from coopjax import plotting
from coopjax.coopflow.inference import interpolate as interpolate_fn
from coopjax.coopflow.inference import reconstruct as reconstruct_fn
from coopjax.coopflow.inference import reconstruct_x0
from coopjax.coopflow.model import generate, propose
from coopjax.data import masks
from coopjax.trainer import reports
from coopjax.trainer.tasks import bind, save_side_by_side, task_key


def _keys(algo, state, salt: int):
  return jax.random.split(task_key(algo, state, salt))


SPACES = ('x0', 'latent')


def _reconstruct_fn(algo, with_mask: bool):
  cfg = algo.config.task
  space = cfg.get('recon_space', 'latent')
  if space not in SPACES:
    raise ValueError(f'config.task.recon_space={space!r}; expected one of '
                     f'{SPACES}.')

  def run(params, target, z_init, key, mask):
    if space == 'latent':
      return reconstruct_fn(algo.model, params, target, z_init, key,
                            num_iters=int(cfg.recon_iters),
                            lr=float(cfg.recon_lr),
                            mask=mask if with_mask else None)
    lr, decay = ((cfg.inpaint_lr, cfg.inpaint_decay) if with_mask else
                 (cfg.recon_lr, cfg.recon_decay))
    x0 = propose(algo.model, params['flow'], z_init)
    return reconstruct_x0(algo.model, params, target, x0, key,
                          num_iters=int(cfg.recon_iters), lr=float(lr),
                          decay=float(decay),
                          mask=mask if with_mask else None)

  return algo.jit(('reconstruct', with_mask, space), run)


def _fit(algo, state, target, salt: int, mask=None):
  """Fits from ``N(0, I)`` latents (``task.recon_space``); ``(x, losses)``
  as numpy."""
  k_z, k_chain = _keys(algo, state, salt)
  z0 = jax.random.normal(k_z, (len(target), algo.model.latent_dim))
  _, x, losses = _reconstruct_fn(algo, mask is not None)(
      state.ema, jnp.asarray(target), z0, k_chain,
      None if mask is None else jnp.asarray(mask))
  return np.asarray(x), np.asarray(losses)


def _start(algo, state, num: int, salt: int) -> np.ndarray:
  """The revised samples of the initial latents ``_fit`` starts from."""
  k_z, k_chain = _keys(algo, state, salt)
  z0 = jax.random.normal(k_z, (num, algo.model.latent_dim))
  fn = algo.jit('generate', lambda p, z, k: generate(algo.model, p, z, k))
  return np.asarray(fn(state.ema, z0, k_chain))


def reconstruct(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """Reconstructs test images through the chain (``task.recon_space``)."""
  target = dataset.test_batch(algo.config.task.num)['x']
  x, losses = _fit(algo, state, target, salt=11)
  start = _start(algo, state, len(target), salt=11)
  np.savez(prefix + '.npz', x=x, target=target, start=start, losses=losses)
  save_side_by_side(prefix + '.png', (target, start, x),
                    titles=('target', 'start', 'reconstructed'))
  return {'mse_initial': float(losses[0]), 'mse_final': float(losses[-1])}


def inpaint(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """Fills the hidden pixels: the chain's start (or the latent) is fitted to
  the known pixels only, and the known pixels of the result are the
  observation's, exactly."""
  cfg = algo.config.task
  obs = dataset.test_batch(cfg.num)['x']
  mask = masks.make(cfg.mask, obs.shape, algo.config.seed)
  fitted, losses = _fit(algo, state, obs, salt=12, mask=mask)
  x = np.where(mask, obs, fitted)
  start = np.where(mask, obs, _start(algo, state, len(obs), salt=12))
  np.savez(prefix + '.npz', x=x, observed=obs, mask=mask, losses=losses)
  save_side_by_side(prefix + '.png', (masks.shown(obs, mask), x, obs),
                    titles=('observed', 'inpainted', 'true'))
  figures = masks.fill_figures(x, obs, mask)
  figures['masked_pixel_mse_initial'] = masks.fill_figures(
      start, obs, mask)['masked_pixel_mse']
  figures['known_pixel_mse_fit'] = float(losses[-1])
  return figures


def interpolate(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """Strips between pairs of test images along a line in the flow's latent
  space: the flow's images, and the same revised by the Langevin chain."""
  cfg = algo.config.task
  pairs = max(1, cfg.num // 2)
  test = dataset.test_batch(2 * pairs)['x']
  x_a, x_b = test[:pairs], test[pairs:2 * pairs]
  points = int(cfg.interp_points)
  fn = algo.jit(('interpolate', points), lambda p, a, b, key=None: (
      interpolate_fn(algo.model, p, a, b, points, key)))
  flow_path = np.asarray(fn(state.ema, x_a, x_b))
  revised = np.asarray(fn(state.ema, x_a, x_b, key=_keys(algo, state, 13)[1]))
  np.savez(prefix + '.npz', flow=flow_path, revised=revised, x_a=x_a, x_b=x_b)
  rows = np.stack([flow_path, revised], axis=1)[:8]
  plotting.save_labelled_grid(
      prefix + '.png', rows.reshape((-1,) + x_a.shape[1:]),
      ncol=int(cfg.interp_points), zoom=reports.zoom_for(x_a),
      title=f'{os.path.basename(prefix)}: from x_a (left) to x_b (right)',
      row_labels=['flow', 'revised'] * len(rows))
  err = max(np.max(np.abs(flow_path[:, 0] - x_a)),
            np.max(np.abs(flow_path[:, -1] - x_b)))
  steps = np.abs(np.diff(flow_path, axis=1)).mean(axis=tuple(range(2, flow_path.ndim)))
  return {'endpoint_max_abs_error': float(err),
          'mean_step_change': float(steps.mean()),
          'max_step_change': float(steps.max())}


def tasks_for(algo) -> Dict:
  """The CLI modes of a CoopFlow algorithm on images, bound to it."""
  if algo.kind != 'images':
    return {}
  return bind(algo, (('reconstruct', reconstruct),
                     ('interpolate', interpolate), ('inpaint', inpaint)))
