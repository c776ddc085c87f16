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
- ``interp_points``: images per interpolation strip (the authors' 21);
- ``interp_from``: ``'reconstruction'`` (the authors': the ends are the
  flow latents of the test images' reconstructions) or ``'images'`` (the
  flow latents of the images themselves);
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
from coopjax.coopflow.inference import interpolate_latents, noise_free
from coopjax.coopflow.inference import reconstruct as reconstruct_fn
from coopjax.coopflow.inference import reconstruct_x0
from coopjax.coopflow.model import encode, generate, propose
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
  """Fits from ``N(0, I)`` latents (``task.recon_space``): ``(start, x,
  losses)``, where ``start`` is the fitted latent (``'latent'``) or chain
  start ``x_0`` (``'x0'``) and ``x`` the chain's end."""
  k_z, k_chain = _keys(algo, state, salt)
  z0 = jax.random.normal(k_z, (len(target), algo.model.latent_dim))
  start, x, losses = _reconstruct_fn(algo, mask is not None)(
      state.ema, jnp.asarray(target), z0, k_chain,
      None if mask is None else jnp.asarray(mask))
  return start, np.asarray(x), np.asarray(losses)


def _start(algo, state, num: int, salt: int) -> np.ndarray:
  """The revised samples of the initial latents ``_fit`` starts from."""
  k_z, k_chain = _keys(algo, state, salt)
  z0 = jax.random.normal(k_z, (num, algo.model.latent_dim))
  fn = algo.jit('generate', lambda p, z, k: generate(algo.model, p, z, k))
  return np.asarray(fn(state.ema, z0, k_chain))


def reconstruct(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """Reconstructs test images through the chain (``task.recon_space``)."""
  target = dataset.test_batch(algo.config.task.num)['x']
  _, x, losses = _fit(algo, state, target, salt=11)
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
  _, fitted, losses = _fit(algo, state, obs, salt=12, mask=mask)
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


INTERP_FROM = ('reconstruction', 'images')


def _end_latents(algo, state, images: np.ndarray, source: str):
  """Latents of the interpolation's ends and the images they stand for.

  ``'reconstruction'`` (the authors'): the flow latents of the
  reconstructions' chain starts (``task.recon_space``), shown next to the
  images they reconstruct; ``'images'``: the flow latents of the images.
  """
  encode_fn = algo.jit('encode', lambda p, x: encode(algo.model, p, x))
  if source == 'images':
    return encode_fn(state.ema['flow'], jnp.asarray(images))
  start, _, _ = _fit(algo, state, images, salt=13)
  if algo.config.task.get('recon_space', 'latent') == 'latent':
    return start
  return encode_fn(state.ema['flow'], start)


def interpolate(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """Strips between pairs of test images along a line in the flow's latent
  space (``task.interp_from``): the flow's images, and the same revised by
  the chain (noise-free, as the authors' script)."""
  cfg = algo.config.task
  source = cfg.get('interp_from', 'images')
  if source not in INTERP_FROM:
    raise ValueError(f'config.task.interp_from={source!r}; expected one of '
                     f'{INTERP_FROM}.')
  pairs = max(1, cfg.num // 2)
  test = dataset.test_batch(2 * pairs)['x']
  x_a, x_b = test[:pairs], test[pairs:2 * pairs]
  z = _end_latents(algo, state, test[:2 * pairs], source)
  points = int(cfg.interp_points)
  free = noise_free(algo.model)
  fn = algo.jit(('interpolate', points), lambda p, a, b, key=None: (
      interpolate_latents(free, p, a, b, points, key)))
  z_a, z_b = z[:pairs], z[pairs:2 * pairs]
  flow_path = np.asarray(fn(state.ema, z_a, z_b))
  revised = np.asarray(fn(state.ema, z_a, z_b, key=_keys(algo, state, 13)[1]))
  np.savez(prefix + '.npz', flow=flow_path, revised=revised, x_a=x_a, x_b=x_b)
  rows = np.stack([flow_path, revised], axis=1)[:8]
  plotting.save_labelled_grid(
      prefix + '.png', rows.reshape((-1,) + x_a.shape[1:]),
      ncol=int(cfg.interp_points), zoom=reports.zoom_for(x_a),
      title=(f'{os.path.basename(prefix)}: from x_a (left) to x_b (right), '
             f'latents of the {source}'),
      row_labels=['flow', 'revised'] * len(rows))
  ends = np.concatenate([revised[:, 0], revised[:, -1]])
  steps = np.abs(np.diff(flow_path, axis=1)).mean(axis=tuple(range(2, flow_path.ndim)))
  figures = {'mean_step_change': float(steps.mean()),
             'max_step_change': float(steps.max()),
             'endpoint_mse': float(np.mean((ends - test[:2 * pairs]) ** 2))}
  if source == 'images':
    figures['endpoint_max_abs_error'] = float(max(
        np.max(np.abs(flow_path[:, 0] - x_a)),
        np.max(np.abs(flow_path[:, -1] - x_b))))
  return figures


def tasks_for(algo) -> Dict:
  """The CLI modes of a CoopFlow algorithm on images, bound to it."""
  if algo.kind != 'images':
    return {}
  return bind(algo, (('reconstruct', reconstruct),
                     ('interpolate', interpolate), ('inpaint', inpaint)))
