"""Pictures and quality figures for image samples, shared by every algorithm.

``image_report`` writes ``<prefix>.npz`` (the samples and any per-level
trace), ``<prefix>.png`` (a grid of up to 100 samples, titled with the run,
the step and the quality figures) and, given a trace, ``<prefix>_levels.png``:
one row per example, each level's initializer proposal beside its Langevin
result, every column labelled (the CDRL paper's analysis figure). It
returns the quality figures the data allow: the digits Frechet distance for
the embedded digits, FID / Inception Score when ``config.eval.inception_path``
names converted Inception weights.
"""

from __future__ import annotations

import os
import re
from typing import Dict, Optional, Sequence

import numpy as np

from coopjax import metrics, plotting

GRID = 100
TRACE_ROWS = 8
LABELLED_TILE = 48  # pixels: the least width of a tile under a column label


def zoom_for(images: np.ndarray) -> int:
  """Pixel zoom that makes small images (8x8 digits) visible: to >= 32 px."""
  return max(1, 32 // images.shape[1])


def trace_grid(levels: np.ndarray, proposals: np.ndarray) -> np.ndarray:
  """``[rows * 2T, H, W, C]``: per example, (proposal, result) for each level."""
  rows = min(TRACE_ROWS, len(levels))
  pairs = np.stack([proposals[:rows], levels[:rows]], axis=2)  # [r, T, 2, ...]
  return pairs.reshape((-1,) + levels.shape[2:])


def figure_title(config, dataset_name: str, prefix: str,
                 figures: Dict[str, float], what: str = 'samples') -> str:
  """``'cdrl on digits, step 1000 (sample_1000)\nsamples: frechet_digits=35.2'``:
  the algorithm, the data, the step (read from the file name), then what
  the figure shows and its figures."""
  name = os.path.basename(prefix)
  step = re.search(r'_(\d+)(?:_|$)', name)
  when = f', step {step.group(1)}' if step else ''
  shown = ', '.join(f'{k}={v:.4g}' for k, v in figures.items())
  return (f'{config.algorithm} on {dataset_name}{when} ({name})\n{what}'
          + (f': {shown}' if shown else ''))


def cache_dir(config, prefix: str) -> str:
  """``config.eval.cache_dir``, else ``<workdir>/cache`` next to ``samples/``."""
  path = config.eval.cache_dir or os.path.join(
      os.path.dirname(os.path.dirname(os.path.abspath(prefix))), 'cache')
  os.makedirs(path, exist_ok=True)
  return path


def quality(config, dataset, samples: np.ndarray,
            prefix: str) -> Dict[str, float]:
  """Frechet figures of ``samples`` against the data (see module docstring)."""
  if dataset.name == 'digits':
    return {'frechet_digits': metrics.digits_frechet(
        samples, cache_dir(config, prefix),
        resize=config.data.resize)}
  path = config.eval.inception_path
  if not path:
    return {}
  ev = config.eval
  return metrics.fid_and_is(samples, dataset, path, cache_dir(config, prefix),
                            split=ev.fid_reference, num_real=ev.fid_num_real,
                            clamp=ev.fid_clamp, quantize=ev.fid_quantize)


def check_eval_options(config) -> None:
  """Refuses bad ``config.eval`` FID / checkpoint options before any work.

  Raises:
    ValueError: one line naming the field and its allowed values.
  """
  ev = config.eval
  allowed = {'fid_quantize': metrics.fid.QUANTIZE,
             'fid_reference': ('train', 'test'),
             'checkpoint': ('latest', 'best')}
  for name, values in allowed.items():
    if ev[name] not in values:
      raise ValueError(f'config.eval.{name}={ev[name]!r}; expected one of '
                       f'{values}.')


def fid_protocol(config, num_samples: int) -> Dict[str, object]:
  """How the FID of ``num_samples`` samples is computed under ``config``
  (recorded with the result in ``eval.json``)."""
  ev = config.eval
  return {'num_samples': int(num_samples), 'clamp': bool(ev.fid_clamp),
          'quantize': str(ev.fid_quantize),
          'reference_split': str(ev.fid_reference),
          'num_real': int(ev.fid_num_real),
          'inception_weights': metrics.weights_hash(ev.inception_path)}


def image_report(config, dataset, samples: np.ndarray, prefix: str,
                 levels: Optional[np.ndarray] = None,
                 proposals: Optional[np.ndarray] = None,
                 level_titles: Optional[Sequence[str]] = None
                 ) -> Dict[str, float]:
  """Writes the npz and PNGs of image samples; returns quality figures.

  Args:
    config: the run config (``eval`` fields pick the figures).
    dataset: the training set.
    samples: ``[N, H, W, C]`` in [-1, 1].
    prefix: path prefix of the files.
    levels: optional ``[N, T, H, W, C]`` per-level results.
    proposals: optional ``[N, T, H, W, C]`` per-level proposals.
    level_titles: names of the T levels, stored in the npz.
  """
  arrays = {'x': samples}
  if levels is not None:
    arrays['levels'] = levels[:GRID]
    arrays['proposals'] = proposals[:GRID]
    arrays['level_titles'] = np.asarray(list(level_titles or ()))
  np.savez(prefix + '.npz', **arrays)
  figures = quality(config, dataset, samples, prefix)
  zoom = zoom_for(samples)
  shown = samples[:GRID]
  plotting.save_labelled_grid(
      prefix + '.png', shown, ncol=min(10, len(shown)), zoom=zoom,
      title=figure_title(config, dataset.name, prefix, figures,
                         f'{len(shown)} of {len(samples)} samples'))
  if levels is not None:
    titles = list(level_titles or (f'level {t}' for t in
                                   range(levels.shape[1])))
    labels = [f'{t}\n{part}' for t in titles
              for part in ('proposal', 'result')]
    plotting.save_labelled_grid(
        prefix + '_levels.png', trace_grid(levels, proposals),
        ncol=2 * levels.shape[1],
        zoom=max(zoom, -(-LABELLED_TILE // samples.shape[1])),
        title=figure_title(config, dataset.name, prefix, figures,
                           'per level, the proposal (initializer, flow or '
                           'x_t) and its Langevin result'),
        col_labels=labels,
        row_labels=[f'sample {i}' for i in range(min(TRACE_ROWS,
                                                     len(levels)))],
        note=('left to right: the noisiest level first'
              if levels.shape[1] > 1 else ''))
  return figures
