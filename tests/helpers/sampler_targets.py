"""Test targets with known moments, shared by the sampler tests."""

import jax.numpy as jnp
import numpy as np

# Correlated Gaussian N(0, S), S = [[1, .8], [.8, 1]].
COV = np.array([[1.0, 0.8], [0.8, 1.0]])
PRECISION = np.linalg.inv(COV)


def gaussian(x):
  """``[B, 2] -> [B]`` log-density of N(0, COV)."""
  return -0.5 * jnp.einsum('bi,ij,bj->b', x, jnp.asarray(PRECISION), x)


def banana(x):
  """``x1 ~ N(0, 1)``, ``x2 | x1 ~ N(x1^2 - 1, 1)``: a curved ridge."""
  return -0.5 * x[..., 0] ** 2 - 0.5 * (x[..., 1] - x[..., 0] ** 2 + 1) ** 2


def statistics(x):
  """Functions of a ``[N, 2]`` sample whose means the tests check."""
  x1, x2 = x[:, 0], x[:, 1]
  return {'E x1': x1, 'E x2': x2, 'E x1^2': x1 ** 2, 'E x2^2': x2 ** 2,
          'E x1 x2': x1 * x2, 'E x1^2 x2': x1 ** 2 * x2}


# E x1^2 x2 = E[x1^4 - x1^2] = 2 and E x2^2 = Var(x1^2) + 1 = 3 on the banana.
TRUTH = {
    'gaussian': {'E x1': 0.0, 'E x2': 0.0, 'E x1^2': 1.0, 'E x2^2': 1.0,
                 'E x1 x2': 0.8, 'E x1^2 x2': 0.0},
    'banana': {'E x1': 0.0, 'E x2': 0.0, 'E x1^2': 1.0, 'E x2^2': 3.0,
               'E x1 x2': 0.0, 'E x1^2 x2': 2.0},
}


def z_scores(x, truth):
  """``(mean - truth) / standard error`` of each statistic over independent draws."""
  x = np.asarray(x, np.float64)
  n = x.shape[0]
  return {k: (v.mean() - truth[k]) / (v.std(ddof=1) / np.sqrt(n))
          for k, v in statistics(x).items()}
