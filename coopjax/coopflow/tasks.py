"""CoopFlow's tasks as CLI modes: ``--mode=reconstruct|interpolate|inpaint``.

Each task is ``(algo, state, dataset, prefix) -> {figure: value}`` on the EMA
parameters of a trained model; it writes ``<prefix>.npz`` and
``<prefix>.png``. The mathematics is in :mod:`coopjax.coopflow.inference`; settings come
from ``config.task``:

- ``num``: test images per task;
- ``recon_iters``, ``recon_lr``: Adam on the latent through the unrolled
  Langevin chain (reconstruction and inpainting);
- ``interp_points``: images per interpolation strip;
- ``mask``: ``'square'``, ``'half'`` or ``'free'`` (:mod:`coopjax.data.masks`).

(Synthesis is ``--mode=sample``.)
"""

from __future__ import annotations

from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np

from coopjax import plotting
from coopjax.coopflow.inference import interpolate as interpolate_fn
from coopjax.coopflow.inference import reconstruct as reconstruct_fn
from coopjax.coopflow.model import generate
from coopjax.data import masks
from coopjax.trainer import reports
from coopjax.trainer.tasks import bind, save_side_by_side, task_key


def _keys(algo, state, salt: int):
  return jax.random.split(task_key(algo, state, salt))


def _reconstruct_fn(algo, with_mask: bool):
  cfg = algo.config.task

  def run(params, target, z_init, key, mask):
    return reconstruct_fn(algo.model, params, target, z_init, key,
                          num_iters=int(cfg.recon_iters),
                          lr=float(cfg.recon_lr),
                          mask=mask if with_mask else None)

  return algo.jit(('reconstruct', with_mask), run)


def _fit(algo, state, target, salt: int, mask=None):
  """Latent optimisation from ``N(0, I)`` latents; ``(x, losses)`` as numpy."""
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
  """Reconstructs test images by optimising the latent through the chain."""
  target = dataset.test_batch(algo.config.task.num)['x']
  x, losses = _fit(algo, state, target, salt=11)
  start = _start(algo, state, len(target), salt=11)
  np.savez(prefix + '.npz', x=x, target=target, start=start, losses=losses)
  save_side_by_side(prefix + '.png', (target, start, x),
                    titles=('target', 'start', 'reconstructed'))
  return {'mse_initial': float(losses[0]), 'mse_final': float(losses[-1])}


def inpaint(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """Fills the hidden pixels: the latent is fitted to the known pixels only,
  and the known pixels of the result are the observation's, exactly."""
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
  plotting.save_image_grid(prefix + '.png',
                           rows.reshape((-1,) + x_a.shape[1:]),
                           ncol=int(cfg.interp_points),
                           zoom=reports.zoom_for(x_a))
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
