"""Gaussian statistics of features and the Frechet distance between Gaussians.

The Frechet (2-Wasserstein) distance between ``N(mu1, S1)`` and ``N(mu2, S2)``
is, squared (the quantity FID reports),

    d^2 = ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^{1/2}).

The trace of the matrix square root is computed without a general (non-
symmetric) ``sqrtm``: with ``A = S1^{1/2}`` (symmetric, from ``eigh``), ``S1 S2
= A (A S2 A) A^{-1}`` is similar to the symmetric positive semi-definite
``M = A S2 A``, so ``Tr((S1 S2)^{1/2}) = sum_i sqrt(lambda_i(M))``. Two
symmetric eigendecompositions in float64, with round-off negative eigenvalues
clipped to 0, give a real, finite result even for singular covariances (fewer
samples than dimensions), where ``scipy.linalg.sqrtm`` can return complex
values or need the ``eps * I`` offset that pytorch-fid adds. All on the host in
numpy float64: float32 loses several digits in the ``Tr`` difference.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np


class GaussianStats:
  """Streaming mean and covariance of feature vectors, in float64.

  Add batches with :meth:`update`; :meth:`finalize` returns ``(mu, sigma)``
  with the unbiased (``n - 1``) covariance, as ``np.cov`` gives.
  """

  def __init__(self):
    self.n = 0
    self._sum: Optional[np.ndarray] = None
    self._outer: Optional[np.ndarray] = None
    self._shift: Optional[np.ndarray] = None

  def update(self, features: np.ndarray) -> None:
    """Adds a ``[B, D]`` batch of features."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2:
      raise ValueError(f'features must be [N, D], got shape {f.shape}')
    if self._sum is None:
      # Sums are taken about the first batch's mean, so that the covariance
      # does not come from a difference of two large numbers.
      self._shift = f.mean(axis=0)
      self._sum = np.zeros(f.shape[1])
      self._outer = np.zeros((f.shape[1], f.shape[1]))
    elif f.shape[1] != len(self._sum):
      raise ValueError(f'features have {f.shape[1]} dimensions, earlier '
                       f'batches {len(self._sum)}')
    d = f - self._shift
    self._sum += d.sum(axis=0)
    self._outer += d.T @ d
    self.n += len(f)

  def finalize(self) -> Tuple[np.ndarray, np.ndarray]:
    """``(mu [D], sigma [D, D])`` of everything added so far.

    Raises:
      ValueError: fewer than 2 vectors were added.
    """
    if self.n < 2:
      raise ValueError(f'Gaussian statistics need >= 2 feature vectors, got '
                       f'{self.n}')
    mean_d = self._sum / self.n
    sigma = (self._outer - self.n * np.outer(mean_d, mean_d)) / (self.n - 1)
    return self._shift + mean_d, 0.5 * (sigma + sigma.T)


def gaussian_stats(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Mean and unbiased covariance of ``[N, D]`` features (float64).

  Args:
    features: ``[N, D]`` with ``N >= 2``.

  Returns:
    ``(mu [D], sigma [D, D])``, equal to ``(mean(axis=0), np.cov(rowvar=False))``.
  """
  stats = GaussianStats()
  stats.update(features)
  return stats.finalize()


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric PSD matrix (eigenvalues clipped)."""
  w, v = np.linalg.eigh(sigma)
  return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
  """``Tr((sigma1 sigma2)^{1/2})`` for symmetric PSD matrices (module docstring)."""
  a = _psd_sqrt(sigma1)
  m = a @ sigma2 @ a
  w = np.linalg.eigvalsh(0.5 * (m + m.T))
  return float(np.sum(np.sqrt(np.clip(w, 0.0, None))))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
  """Squared Frechet distance between two Gaussians (the FID formula).

  Args:
    mu1: ``[D]`` mean of the first Gaussian.
    sigma1: ``[D, D]`` its covariance (symmetric PSD).
    mu2: ``[D]`` mean of the second.
    sigma2: ``[D, D]`` its covariance.

  Returns:
    ``||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^{1/2})`` as a
    float >= 0 (up to round-off); symmetric in its two arguments. NaN when a
    statistic is not finite (features of diverged samples), as the 2-D TVs.

  Raises:
    ValueError: the shapes do not match.
  """
  mu1, mu2 = (np.asarray(m, np.float64).reshape(-1) for m in (mu1, mu2))
  s1, s2 = (np.asarray(s, np.float64) for s in (sigma1, sigma2))
  d = len(mu1)
  for name, s in (('sigma1', s1), ('sigma2', s2)):
    if s.shape != (d, d):
      raise ValueError(f'{name} has shape {s.shape}; the means have {d} '
                       f'dimensions, so expected ({d}, {d})')
  if len(mu2) != d:
    raise ValueError(f'mu1 has {d} dimensions, mu2 {len(mu2)}')
  if not all(np.isfinite(a).all() for a in (mu1, mu2, s1, s2)):
    return float('nan')  # a diverged model's samples: reported, not raised
  diff = mu1 - mu2
  value = (diff @ diff + np.trace(s1) + np.trace(s2)
           - 2.0 * trace_sqrt_product(s1, s2))
  return float(max(value, 0.0))


def frechet_distance_of_features(features1: np.ndarray,
                                 features2: np.ndarray) -> float:
  """``frechet_distance`` of the Gaussian fits of two ``[N, D]`` feature sets."""
  return frechet_distance(*gaussian_stats(features1),
                          *gaussian_stats(features2))
