"""FID and Inception Score of image samples against an ImageDataset.

The real images' Inception statistics are computed once and cached in
``cache_dir`` as ``fid_stats_<dataset>_<split>_<H>x<W>x<C>_n<N>_<hash>.npz``
(``mu``, ``sigma``), where ``<hash>`` is the start of the weights file's
sha256, so other weights, sizes or splits never reuse a stale file.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from coopjax import console
from coopjax.data.images import to_float
from coopjax.metrics import frechet, inception


def weights_hash(path: str) -> str:
  """First 12 hex digits of the file's sha256."""
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()[:12]


def real_images(dataset, split: str, num: int) -> np.ndarray:
  """Up to ``num`` real images of ``split`` ('train' or 'test'), as stored.

  'test' falls back to the training images where the set has no test split
  (as ``ImageDataset.test_batch`` does).
  """
  if split == 'train' or (split == 'test' and dataset.test_images is None):
    return dataset.images[:num]
  if split == 'test':
    return dataset.test_images[:num]
  raise ValueError(f"split={split!r}; expected 'train' or 'test'.")


QUANTIZE = ('none', 'round', 'floor')


def prepare_samples(samples: np.ndarray, clamp: bool = True,
                    quantize: str = 'none') -> np.ndarray:
  """Samples as Inception sees them under an FID protocol, float32 in [-1, 1].

  Args:
    samples: ``[N, H, W, C]`` in [-1, 1] (values beyond are possible), or
      uint8 (returned as floats, unchanged otherwise).
    clamp: clamp to [-1, 1] first, as the CDRL authors' code does before
      Inception (``torch.clamp(x, -1, 1)``).
    quantize: ``'none'``; ``'round'`` to the nearest of the 256 uint8 levels
      (what saving PNGs does); ``'floor'``: truncate to uint8, as the DRL
      authors' ``tf.cast(clip((x + 1) * 127.5, 0, 255), uint8)``. Both clip
      to the uint8 range whatever ``clamp`` says.
  """
  if quantize not in QUANTIZE:
    raise ValueError(f'Unknown FID quantisation {quantize!r}; expected one '
                     f'of {QUANTIZE}.')
  if np.asarray(samples).dtype == np.uint8:
    return to_float(np.asarray(samples))
  x = np.asarray(samples, np.float32)
  if clamp:
    x = np.clip(x, -1.0, 1.0)
  if quantize != 'none':
    level = np.clip((x + 1.0) * 127.5, 0.0, 255.0)
    level = np.floor(level) if quantize == 'floor' else np.round(level)
    x = to_float(level.astype(np.uint8))
  return x


def features_stats(images: np.ndarray, variables, batch_size: int,
                   log: Optional[Callable[[str], None]] = None
                   ) -> Tuple[Tuple[np.ndarray, np.ndarray], np.ndarray]:
  """``((mu, sigma) of pool3, logits)`` of images."""
  pool, logits = inception.inception_outputs(images, variables, batch_size,
                                             log)
  return frechet.gaussian_stats(pool), logits


def reference_stats(dataset, variables, weights_id: str, cache_dir: str,
                    split: str = 'train', num: int = 50000,
                    batch_size: int = 100,
                    log: Optional[Callable[[str], None]] = None
                    ) -> Tuple[np.ndarray, np.ndarray]:
  """Cached ``(mu, sigma)`` of the dataset's real images (module docstring).

  Args:
    dataset: an ``ImageDataset``.
    variables: Inception variables.
    weights_id: identifies the weights in the cache name (``weights_hash``).
    cache_dir: directory of the cache files (created if needed).
    split: 'train' (the usual FID reference) or 'test'.
    num: at most this many real images.
    batch_size: images per Inception call.
    log: progress printer.
  """
  images = real_images(dataset, split, num)
  shape = 'x'.join(str(s) for s in images.shape[1:])
  name = re.sub(r'[^A-Za-z0-9_.-]', '-', dataset.name)
  path = os.path.join(cache_dir, f'fid_stats_{name}_{split}_{shape}_'
                      f'n{len(images)}_{weights_id}.npz')
  if os.path.isfile(path):
    with np.load(path) as f:
      return f['mu'], f['sigma']
  if log is not None:
    log(f'FID reference statistics of {len(images)} {dataset.name} {split} '
        f'images -> {path}')
  (mu, sigma), _ = features_stats(images, variables, batch_size, log)
  os.makedirs(cache_dir, exist_ok=True)
  tmp = path + '.tmp.npz'
  np.savez(tmp, mu=mu, sigma=sigma)
  os.replace(tmp, path)
  return mu, sigma


def fid_and_is(samples: np.ndarray, dataset, inception_path: str,
               cache_dir: str, split: str = 'train', num_real: int = 50000,
               batch_size: int = 100, splits: int = 10,
               log: Optional[Callable[[str], None]] = None,
               clamp: bool = True, quantize: str = 'none'
               ) -> Dict[str, float]:
  """FID of samples against the dataset's real images, and their IS.

  Args:
    samples: ``[N, H, W, C]`` in [-1, 1] (or uint8), C in {1, 3}; the paper
      figures use N = 50000 (FID is biased upwards for small N).
    dataset: the ``ImageDataset`` trained on.
    inception_path: converted weights (``config.eval.inception_path``).
    cache_dir: where the real statistics are cached.
    split: real images to compare with: 'train' or 'test'.
    num_real: at most this many real images.
    batch_size: images per Inception call.
    splits: Inception Score splits (at most N).
    log: progress printer (default :func:`coopjax.console.log`).
    clamp, quantize: how the samples are prepared (:func:`prepare_samples`).

  Returns:
    ``{'fid', 'inception_score', 'inception_score_std'}``.

  Raises:
    FileNotFoundError / ValueError: missing or wrong weights (see
      ``inception.load_weights``).
  """
  log = console.log if log is None else log
  images = prepare_samples(samples, clamp, quantize)
  variables = inception.load_weights(inception_path)
  mu_r, sigma_r = reference_stats(dataset, variables,
                                  weights_hash(inception_path), cache_dir,
                                  split, num_real, batch_size, log)
  (mu, sigma), logits = features_stats(images, variables, batch_size, log)
  score, std = inception.inception_score(logits, min(splits, len(logits)))
  return {'fid': frechet.frechet_distance(mu, sigma, mu_r, sigma_r),
          'inception_score': score, 'inception_score_std': std}
