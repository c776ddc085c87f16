"""coopjax.metrics.frechet: the Frechet distance and streaming Gaussian statistics."""

import numpy as np
import pytest
import scipy.linalg

from coopjax import metrics
from coopjax.metrics import frechet


def _random_gaussian(rng, d):
  a = rng.standard_normal((d, d))
  return rng.standard_normal(d), a @ a.T + 0.1 * np.eye(d)


def test_frechet_distance_equals_direct_sqrtm_formula():
  rng = np.random.default_rng(0)
  for d in (1, 3, 7):
    (mu1, s1), (mu2, s2) = _random_gaussian(rng, d), _random_gaussian(rng, d)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    direct = (np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
              - 2 * np.trace(covmean))
    got = metrics.frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(direct, rel=1e-8, abs=1e-8)
    assert metrics.frechet_distance(mu2, s2, mu1, s1) == pytest.approx(
        got, rel=1e-8)
    assert metrics.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(
        0.0, abs=1e-8 * np.trace(s1))


def test_frechet_distance_of_singular_covariances_is_real_and_right():
  # Rank-1 covariances in 2-D: N(0, diag(a, 0)) vs N(0, diag(b, 0)) are
  # 1-D Gaussians, d^2 = (sqrt(a) - sqrt(b))^2.
  s1, s2 = np.diag([4.0, 0.0]), np.diag([1.0, 0.0])
  assert frechet.frechet_distance(np.zeros(2), s1, np.zeros(2),
                                  s2) == pytest.approx(1.0)
  nan_mu = np.array([np.nan, 0.0])
  assert np.isnan(frechet.frechet_distance(nan_mu, s1, np.zeros(2), s2))
  with pytest.raises(ValueError, match='expected'):
    frechet.frechet_distance(np.zeros(3), s1, np.zeros(3), s2)


def test_gaussian_stats_streaming_equals_numpy():
  x = np.random.default_rng(1).standard_normal((50, 4)) * 3 + 100
  stats = metrics.GaussianStats()
  for i in range(0, 50, 7):
    stats.update(x[i:i + 7])
  mu, sigma = stats.finalize()
  np.testing.assert_allclose(mu, x.mean(axis=0), rtol=1e-12)
  np.testing.assert_allclose(sigma, np.cov(x, rowvar=False), rtol=1e-9)
  with pytest.raises(ValueError, match='>= 2'):
    metrics.gaussian_stats(x[:1])
