"""Effective sample size and split R-hat: a direct computation and AR(1) values. (coopjax.samplers.diagnostics)"""

import numpy as np
import pytest

from coopjax.samplers import diagnostics


def ar1(seed, phi, n, m, k):
  """``[n, m, k]``: ``m * k`` stationary AR(1) chains, unit variance."""
  rng = np.random.default_rng(seed)
  x = np.empty((n, m, k))
  x[0] = rng.standard_normal((m, k))
  e = rng.standard_normal((n, m, k)) * np.sqrt(1 - phi ** 2)
  for t in range(1, n):
    x[t] = phi * x[t - 1] + e[t]
  return x


def within_between(x):
  n, m = x.shape
  w = np.mean([np.var(x[:, j], ddof=1) for j in range(m)])
  b_over_n = np.var(x.mean(0), ddof=1)
  return w, (n - 1) / n * w + b_over_n


def ess_direct(x):
  """One coordinate, ``[n, m]``: lag sums by hand, Geyer's pairs in a loop."""
  n, m = x.shape
  w, var_plus = within_between(x)
  c = x - x.mean(0)
  acov = np.array([[np.dot(c[:n - t, j], c[t:, j]) / n for j in range(m)]
                   for t in range(n)])
  rho = 1 - (w - acov.mean(1)) / var_plus
  rho[0] = 1.0
  tau, prev = -1.0, np.inf
  for k in range(n // 2):
    pair = rho[2 * k] + rho[2 * k + 1]
    if pair <= 0:
      break
    prev = min(pair, prev)
    tau += 2 * prev
  return n * m / max(tau, 1 / np.log10(n * m))


def rhat_direct(x):
  n = x.shape[0] // 2
  halves = np.concatenate([x[:n], x[x.shape[0] - n:]], axis=1)
  w, var_plus = within_between(halves)
  return np.sqrt(var_plus / w)


@pytest.mark.parametrize('phi,n', [(0.6, 61), (-0.5, 40), (0.95, 61)])
def test_equal_to_a_direct_computation(phi, n):
  x = ar1(0, phi, n, 3, 4)
  np.testing.assert_allclose(
      diagnostics.effective_sample_size(x),
      [ess_direct(x[..., i]) for i in range(4)], rtol=2e-4)
  np.testing.assert_allclose(diagnostics.split_rhat(x),
                             [rhat_direct(x[..., i]) for i in range(4)],
                             rtol=1e-5)
  # Chains first, as blackjax lays them out.
  np.testing.assert_allclose(
      diagnostics.effective_sample_size(np.swapaxes(x, 0, 1), sample_axis=1,
                                        chain_axis=0),
      diagnostics.effective_sample_size(x), rtol=1e-6)


@pytest.mark.parametrize('phi,tolerance', [(0.9, 0.1), (0.0, 0.03)])
def test_ess_of_ar1_chains_matches_the_autocorrelation_time(phi, tolerance):
  # AR(1): tau = (1 + phi) / (1 - phi), so ESS = n m (1 - phi) / (1 + phi):
  # 421 for phi = 0.9, 8000 for independent draws (n = 1000, m = 8). The
  # estimate's spread over coordinates is 10.6% (phi = 0.9) and 2.8% (0);
  # the mean of 20 coordinates is within ~4 of its standard errors.
  x = ar1(1, phi, 1000, 8, 20)
  ess = np.asarray(diagnostics.effective_sample_size(x))
  np.testing.assert_allclose(ess.mean(), 8000 * (1 - phi) / (1 + phi),
                             rtol=tolerance)


def test_split_rhat_flags_disagreeing_and_drifting_chains():
  x = ar1(2, 0.5, 400, 4, 3)
  assert np.all(np.asarray(diagnostics.split_rhat(x)) < 1.02)
  shifted = x + np.arange(4)[None, :, None]    # chains at different places
  assert np.all(np.asarray(diagnostics.split_rhat(shifted)) > 1.5)
  # Every chain drifts the same way: only splitting the chains sees it.
  drifting = x + np.linspace(0, 2, 400)[:, None, None]
  assert np.all(np.asarray(diagnostics.split_rhat(drifting)) > 1.1)
  for i in range(3):
    w, var_plus = within_between(drifting[..., i])
    assert np.sqrt(var_plus / w) < 1.02
  with pytest.raises(ValueError, match='at least 4 draws'):
    diagnostics.split_rhat(x[:3])
