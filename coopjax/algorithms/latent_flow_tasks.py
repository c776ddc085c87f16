"""Tasks of the latent flow prior as CLI modes.

``--mode=generate|reconstruct|anomaly|inpaint|recover``; each is a function
``(state, dataset, prefix) -> {figure: value}`` that uses the EMA parameters,
writes ``<prefix>.npz`` / ``<prefix>.png`` and returns its figures. The
mathematics is in :mod:`coopjax.latent_flow`; settings come from
``config.task``:

- ``num``: test images (reconstruct, inpaint) or training images (recover);
- ``recon_steps``: noise-free posterior steps of reconstruction, anomaly
  scoring, inpainting and recovery;
- ``chunk``: images per compiled inference call;
- ``mask``: a :mod:`coopjax.masks` kind for ``inpaint``;
- ``temperatures``: prior temperatures of ``generate``.

``anomaly`` needs ``config.data.holdout_class`` (the held-out class is the
anomaly, the test images of the other classes are normal); ``recover`` needs
a run trained on corrupted data (``config.data.missing_fraction > 0``). Mean
fill (each pixel's mean over the observed training values) is the baseline
of ``inpaint`` and ``recover``.
"""

from __future__ import annotations

import functools
from typing import Callable, Dict, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from coopjax import data, latent_flow, masks, metrics, plotting, rng
from coopjax.algorithms import reports
from coopjax.data.images import to_float
from coopjax.rng import example_keys

Task = Callable[..., Dict[str, float]]


def _jitted(algo, name: str, fn: Callable) -> Callable:
  """``jax.jit(fn)``, cached on the algorithm under ``name``."""
  cache = algo.__dict__.setdefault('_task_fns', {})
  if name not in cache:
    cache[name] = jax.jit(fn)
  return cache[name]


def _key(algo, state, salt: int) -> jax.Array:
  return rng.task_key(algo.config.seed, state.step, salt)


def _in_chunks(fn: Callable, key: jax.Array, chunk: int, *arrays):
  """Applies ``fn(*chunks, keys)`` over the leading axis in chunks; example
  ``i`` gets ``fold_in(key, i)``. Returns numpy (a tuple if ``fn`` does)."""
  parts = []
  for i in range(0, len(arrays[0]), chunk):
    pieces = [jnp.asarray(a[i:i + chunk]) for a in arrays]
    keys = example_keys(key, i, len(pieces[0]))
    parts.append(jax.device_get(fn(*pieces, keys)))
  return jax.tree_util.tree_map(lambda *a: np.concatenate(a), *parts)


def _recon_fn(algo, state):
  """``(x, mask, keys) -> g(z*)`` with ``config.task.recon_steps`` steps."""
  steps = int(algo.config.task.recon_steps)
  fn = _jitted(algo, 'recon', lambda s, x, m, k: latent_flow.reconstruct(
      algo.model, s.ema, x, k, steps, m)[0])
  return functools.partial(fn, state)


def _mean_fill(dataset) -> np.ndarray:
  """``[H, W, C]`` per-pixel mean of the observed (finite) training values."""
  return np.nanmean(to_float(dataset.images), axis=0)


def _pairs_png(path: str, rows: Tuple[np.ndarray, ...], n: int = 16) -> None:
  """A grid of ``rows[0][i], rows[1][i], ...`` side by side, two examples a row."""
  grid = np.stack([r[:n] for r in rows], axis=1)
  plotting.save_image_grid(path, grid.reshape((-1,) + rows[0].shape[1:]),
                           ncol=2 * len(rows), zoom=reports.zoom_for(rows[0]))


def generate(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """``z`` from the prior at each temperature, ``x = g(z)``; a grid each."""
  cfg, out = algo.config.task, {}
  num = int(algo.config.sample.num)
  for t in cfg.temperatures:
    fn = _jitted(algo, f'generate_{num}_{t}', lambda s, k, t=t: (
        latent_flow.generate(algo.model, s.ema, k, num, float(t))[0]))
    x = np.asarray(fn(state, _key(algo, state, 1)))
    np.savez(f'{prefix}_T{t:g}.npz', x=x)
    plotting.save_image_grid(f'{prefix}_T{t:g}.png', x[:reports.GRID],
                             ncol=10, zoom=reports.zoom_for(x))
    for name, v in reports.quality(algo.config, dataset, x, prefix).items():
      out[f'{name}_T{t:g}'] = v
  return out


def reconstruct(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """Noise-free posterior inference on held-out images; per-pixel MSE."""
  cfg = algo.config.task
  x = dataset.test_batch(cfg.num)['x']
  x_hat = _in_chunks(_recon_fn(algo, state), _key(algo, state, 2), cfg.chunk,
                     x, np.ones_like(x, bool))
  np.savez(prefix + '.npz', x=x, x_hat=x_hat)
  _pairs_png(prefix + '.png', (x, x_hat))
  return {'recon_mse': float(np.mean((x_hat - x) ** 2)),
          'recon_steps': int(cfg.recon_steps)}


def anomaly(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """AUROC of the anomaly score for the held-out class against the others.

  Also the AUROCs of its two terms alone (reconstruction error, -log prior)
  and the reconstruction MSE of the normal test images.
  """
  holdout = int(algo.config.data.get('holdout_class', -1))
  if holdout < 0 or dataset.test_labels is None:
    raise ValueError('--mode=anomaly needs a labelled dataset trained with '
                     'config.data.holdout_class >= 0 (e.g. '
                     'configs/latent_flow_digits.py:anomaly).')
  cfg = algo.config.task
  test = dataset.test_batch(len(dataset.test_images))
  x, anomalous = test['x'], test['label'] == holdout
  steps = int(cfg.recon_steps)
  fn = _jitted(algo, 'anomaly', lambda s, x, k: latent_flow.anomaly_terms(
      algo.model, s.ema, x, k, steps))
  err, nlp = _in_chunks(functools.partial(fn, state), _key(algo, state, 3),
                        cfg.chunk, x)
  score = err + nlp
  mse = 2.0 * algo.model.sigma ** 2 * err / np.prod(x.shape[1:])
  np.savez(prefix + '.npz', score=score, recon_term=err, neg_log_prior=nlp,
           anomalous=anomalous)
  return {'anomaly_auroc': metrics.auroc(score[anomalous], score[~anomalous]),
          'auroc_recon_only': metrics.auroc(err[anomalous], err[~anomalous]),
          'auroc_prior_only': metrics.auroc(nlp[anomalous], nlp[~anomalous]),
          'recon_mse_normal': float(np.mean(mse[~anomalous])),
          'num_anomalous': int(anomalous.sum()),
          'num_normal': int((~anomalous).sum())}


def _fill_figures(x_true, filled, mask, mean_fill) -> Dict[str, float]:
  baseline = np.where(mask, x_true, mean_fill[None])
  return {'masked_pixel_mse': float(masks.masked_mse(filled, x_true, ~mask)),
          'mean_fill_mse': float(masks.masked_mse(baseline, x_true, ~mask)),
          'known_pixels_changed': float(np.sum((filled != x_true) & mask))}


def inpaint(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """Infers ``z`` from the visible pixels of masked test images and fills the
  hidden ones with ``g(z)``; known pixels are kept exactly."""
  cfg = algo.config.task
  x = dataset.test_batch(cfg.num)['x']
  mask = masks.make(cfg.mask, x.shape, algo.config.seed)
  x_hat = _in_chunks(_recon_fn(algo, state), _key(algo, state, 4), cfg.chunk,
                     x, mask)
  filled = np.where(mask, x, x_hat)
  np.savez(prefix + '.npz', x=x, filled=filled, mask=mask)
  _pairs_png(prefix + '.png', (np.where(mask, x, -1.0), filled, x))
  return _fill_figures(x, filled, mask, _mean_fill(dataset))


def recover(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """Recovers the missing pixels of the corrupted training images the model
  was trained on (no clean image was ever seen); MSE against the clean ones."""
  fraction = float(algo.config.data.get('missing_fraction', 0.0))
  if fraction <= 0:
    raise ValueError('--mode=recover needs a run trained on corrupted images '
                     '(config.data.missing_fraction > 0, e.g. '
                     'configs/latent_flow_digits.py:corrupt).')
  clean_cfg = algo.config.data.copy_and_resolve_references()
  clean_cfg.missing_fraction = 0.0
  clean = data.load(clean_cfg, algo.config.seed)
  cfg = algo.config.task
  corrupted = to_float(dataset.images[:cfg.num])
  x_true = to_float(clean.images[:cfg.num])
  mask = np.isfinite(corrupted)
  observed = np.where(mask, corrupted, 0.0)
  x_hat = _in_chunks(_recon_fn(algo, state), _key(algo, state, 5), cfg.chunk,
                     observed, mask)
  filled = np.where(mask, observed, x_hat)
  np.savez(prefix + '.npz', x=x_true, filled=filled, mask=mask)
  _pairs_png(prefix + '.png', (np.where(mask, observed, -1.0), filled, x_true))
  out = _fill_figures(x_true, filled, mask, _mean_fill(dataset))
  out['missing_fraction'] = float(1.0 - mask.mean())
  return out


def tasks_for(algo) -> Dict[str, Task]:
  """The CLI modes of a latent flow-prior algorithm, bound to it."""
  return {name: functools.partial(fn, algo) for name, fn in (
      ('generate', generate), ('reconstruct', reconstruct),
      ('anomaly', anomaly), ('inpaint', inpaint), ('recover', recover))}
