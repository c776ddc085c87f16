"""Tasks of the latent flow prior as CLI modes.

``--mode=generate|reconstruct|anomaly|inpaint|recover``; each is a function
``(algo, state, dataset, prefix) -> {figure: value}`` that uses the EMA parameters,
writes ``<prefix>.npz`` / ``<prefix>.png`` and returns its figures. The
mathematics is in :mod:`coopjax.latent_flow.model`; settings come from
``config.task``:

- ``num``: test images (reconstruct, inpaint) or training images (recover);
- ``recon_steps``: noise-free posterior steps of reconstruction, anomaly
  scoring, inpainting and recovery;
- ``chunk``: images per compiled inference call;
- ``mask``: a :mod:`coopjax.data.masks` kind for ``inpaint``;
- ``temperatures``: prior temperatures of ``generate``.

``anomaly`` needs ``config.data.holdout_class`` (the held-out class is the
anomaly, the test images of the other classes are normal); ``recover`` needs
a run trained on corrupted data (``config.data.missing_fraction > 0``). Mean
fill (each pixel's mean over the observed training values) is the baseline
of ``inpaint`` and ``recover``.
"""

from __future__ import annotations

import functools
import os
from typing import Dict

import numpy as np

from coopjax import data, metrics, plotting
from coopjax.data import masks
from coopjax.data.images import to_float
from coopjax.latent_flow.model import anomaly_terms, generate as generate_fn
from coopjax.latent_flow.model import reconstruct as reconstruct_fn
from coopjax.trainer import reports
from coopjax.trainer.tasks import (bind, map_in_chunks, save_side_by_side,
                                   task_key)


def _recon_fn(algo, state):
  """``(x, mask, keys) -> g(z*)`` with ``config.task.recon_steps`` steps."""
  steps = int(algo.config.task.recon_steps)
  fn = algo.jit(('recon', steps), lambda s, x, m, k: reconstruct_fn(
      algo.model, s.ema, x, k, steps, m)[0])
  return functools.partial(fn, state)


def _mean_fill(dataset) -> np.ndarray:
  """``[H, W, C]`` per-pixel mean of the observed (finite) training values."""
  return np.nanmean(to_float(dataset.images), axis=0)


def generate(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """``z`` from the prior at each temperature, ``x = g(z)``; a grid each."""
  cfg, out = algo.config.task, {}
  num = int(algo.config.sample.num)
  for t in cfg.temperatures:
    fn = algo.jit(('generate', num, float(t)), lambda s, k, t=t: (
        generate_fn(algo.model, s.ema, k, num, float(t))[0]))
    x = np.asarray(fn(state, task_key(algo, state, 1)))
    np.savez(f'{prefix}_T{t:g}.npz', x=x)
    plotting.save_labelled_grid(
        f'{prefix}_T{t:g}.png', x[:reports.GRID], ncol=10,
        zoom=reports.zoom_for(x),
        title=f'{os.path.basename(prefix)}: prior temperature {t:g}')
    for name, v in reports.quality(algo.config, dataset, x, prefix).items():
      out[f'{name}_T{t:g}'] = v
  return out


def reconstruct(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """Noise-free posterior inference on held-out images; per-pixel MSE."""
  cfg = algo.config.task
  x = dataset.test_batch(cfg.num)['x']
  x_hat = map_in_chunks(_recon_fn(algo, state), task_key(algo, state, 2), cfg.chunk,
                     x, np.ones_like(x, bool))
  np.savez(prefix + '.npz', x=x, x_hat=x_hat)
  save_side_by_side(prefix + '.png', (x, x_hat),
                    titles=('true', 'reconstructed'))
  return {'recon_mse': float(np.mean((x_hat - x) ** 2)),
          'recon_steps': int(cfg.recon_steps)}


def anomaly(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """AUROC of the anomaly score for the held-out class against the others.

  Also the AUROCs of its two terms alone (reconstruction error, -log prior)
  and the reconstruction MSE of the normal test images.
  """
  holdout = int(algo.config.data.holdout_class)
  if holdout < 0 or dataset.test_labels is None:
    raise ValueError('--mode=anomaly needs a labelled dataset trained with '
                     'config.data.holdout_class >= 0 (e.g. '
                     'configs/latent_flow_digits.py:anomaly).')
  cfg = algo.config.task
  test = dataset.test_batch(len(dataset.test_images))
  x, anomalous = test['x'], test['label'] == holdout
  steps = int(cfg.recon_steps)
  fn = algo.jit(('anomaly', steps), lambda s, x, k: anomaly_terms(
      algo.model, s.ema, x, k, steps))
  err, nlp = map_in_chunks(functools.partial(fn, state), task_key(algo, state, 3),
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
  """:func:`coopjax.data.masks.fill_figures` and the mean-fill baseline's MSE."""
  figures = masks.fill_figures(filled, x_true, mask)
  baseline = np.where(mask, x_true, mean_fill[None])
  figures['mean_fill_mse'] = masks.fill_figures(
      baseline, x_true, mask)['masked_pixel_mse']
  return figures


def inpaint(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """Infers ``z`` from the visible pixels of masked test images and fills the
  hidden ones with ``g(z)``; known pixels are kept exactly."""
  cfg = algo.config.task
  x = dataset.test_batch(cfg.num)['x']
  mask = masks.make(cfg.mask, x.shape, algo.config.seed)
  x_hat = map_in_chunks(_recon_fn(algo, state), task_key(algo, state, 4), cfg.chunk,
                     x, mask)
  filled = np.where(mask, x, x_hat)
  np.savez(prefix + '.npz', x=x, filled=filled, mask=mask)
  save_side_by_side(prefix + '.png', (masks.shown(x, mask), filled, x),
                    titles=('observed', 'inpainted', 'true'))
  return _fill_figures(x, filled, mask, _mean_fill(dataset))


def recover(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """Recovers the missing pixels of the corrupted training images the model
  was trained on (no clean image was ever seen); MSE against the clean ones."""
  fraction = float(algo.config.data.missing_fraction)
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
  x_hat = map_in_chunks(_recon_fn(algo, state), task_key(algo, state, 5), cfg.chunk,
                     observed, mask)
  filled = np.where(mask, observed, x_hat)
  np.savez(prefix + '.npz', x=x_true, filled=filled, mask=mask)
  save_side_by_side(prefix + '.png',
                    (masks.shown(observed, mask), filled, x_true),
                    titles=('observed', 'recovered', 'true'))
  out = _fill_figures(x_true, filled, mask, _mean_fill(dataset))
  out['missing_fraction'] = float(1.0 - mask.mean())
  return out


def tasks_for(algo) -> Dict:
  """The CLI modes of a latent flow-prior algorithm, bound to it."""
  return bind(algo, (('generate', generate), ('reconstruct', reconstruct),
                     ('anomaly', anomaly), ('inpaint', inpaint),
                     ('recover', recover)))
