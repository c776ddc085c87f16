"""coopjax.latent_flow.model: densities, posterior sampling, inpainting and
anomaly scores against a linear-Gaussian model."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import latent_flow as lf
from coopjax import metrics
from coopjax.flows import DenseFlow
from coopjax.models.generator import Generator

from helpers.latent_flow_models import SHAPE, linear_model, gaussian_posterior


@pytest.mark.slow
def test_log_joint_equals_gaussian_likelihood_plus_flow_log_prob():
  gen = Generator((4, 4, 1), width=4, num_up=1)
  flow = DenseFlow(3, num_steps=2, hidden=8)
  model = lf.LatentFlowModel(gen, flow, 3, sigma=0.3)
  k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
  z = jax.random.normal(k1, (5, 3))
  params = {'gen': gen.init(k2, z)['params'],
            'prior': flow.init(k3, 2 * z + 1)['params']}
  x = jax.random.uniform(k4, (5, 4, 4, 1), minval=-1, maxval=1)
  mask = np.arange(16).reshape(1, 4, 4, 1) % 3 != 0
  g = np.asarray(jax.jit(gen.apply)({'params': params['gen']}, z))
  flow_lp = np.asarray(jax.jit(lambda p, z: flow.apply(
      {'params': p}, z, method=DenseFlow.log_prob))(params['prior'], z))
  joint = jax.jit(lambda p, z, x, m: lf.log_joint(model, p, z, x, m))
  for m in (np.ones((1, 4, 4, 1), bool), mask):
    mm = np.broadcast_to(m, x.shape)
    n = mm.reshape(5, -1).sum(1)
    direct = (-np.sum(((x - g) ** 2 * mm).reshape(5, -1), 1) / (2 * 0.09) -
              0.5 * n * math.log(2 * math.pi * 0.09) + flow_lp)
    np.testing.assert_allclose(joint(params, z, x, m), direct, rtol=1e-5)


@pytest.mark.slow
def test_short_run_langevin_matches_analytic_gaussian_posterior():
  model, params, w = linear_model(sigma=0.5, n_steps=400, step_size=0.1)
  x = np.array([0.8, -0.4, 0.5, 1.1], np.float32)
  n = 4000
  keys = jax.random.split(jax.random.key(2), n)
  xb = jnp.broadcast_to(jnp.asarray(x).reshape(SHAPE), (n,) + SHAPE)
  z, _ = jax.jit(lambda k: lf.refine(model, params, xb, k))(keys)
  mean, cov = gaussian_posterior(w, x, 0.5)
  # ULA on a Gaussian target is linear: z' = A z + b + s eps with
  # A = I - (s^2/2) P (P the posterior precision), b = (s^2/2) P mean. From
  # z_0 ~ N(0, I) its law after K steps is exactly Gaussian:
  s2, precision = 0.1 ** 2, np.linalg.inv(cov)
  a = np.eye(2) - s2 / 2 * precision
  m_k, c_k = np.zeros(2), np.eye(2)
  for _ in range(400):
    m_k, c_k = a @ m_k + s2 / 2 * precision @ mean, a @ c_k @ a.T + s2 * np.eye(2)
  # (it is the posterior up to the step-size bias: variances ~2% larger)
  np.testing.assert_allclose(m_k, mean, rtol=0.03)
  np.testing.assert_allclose(c_k, cov, rtol=0.05)
  # The chain's sample moments against that law, within 5 standard errors
  # of n = 4000 Gaussian draws (mean: sqrt(C_ii / n); covariance:
  # sqrt((C_ii C_jj + C_ij^2) / n)). Measured: all within 1 s.e.; the noise
  # 5% too large puts a variance 7.8 s.e. off (the old 0.02 + 10% bound
  # passed it).
  z = np.asarray(z, np.float64)
  d = np.diag(c_k)
  assert np.all(np.abs(z.mean(0) - m_k) < 5 * np.sqrt(d / n))
  se_cov = np.sqrt((np.outer(d, d) + c_k ** 2) / n)
  assert np.all(np.abs(np.cov(z.T) - c_k) < 5 * se_cov), (np.cov(z.T), c_k)
  # Without noise the chain climbs to the posterior mode (= mean here).
  _, z_map = jax.jit(lambda x, k: lf.reconstruct(model, params, x, k, 400))(
      xb[:2], keys[:2])
  np.testing.assert_allclose(z_map, np.stack([mean, mean]), atol=1e-3)


def test_inpainting_keeps_known_pixels_and_uses_only_them():
  model, params, w = linear_model(sigma=0.5)
  x = np.array([0.8, -0.4, 0.5, 1.1], np.float32).reshape((1,) + SHAPE)
  mask = np.array([True, True, False, False]).reshape((1,) + SHAPE)
  keys = jax.random.split(jax.random.key(3), 1)
  fill = jax.jit(lambda x: lf.inpaint(model, params, x, mask, keys, 500))
  filled = fill(jnp.asarray(x))
  np.testing.assert_array_equal(np.asarray(filled)[mask], x[mask])
  mean, _ = gaussian_posterior(w, x.reshape(-1), 0.5, rows=slice(0, 2))
  np.testing.assert_allclose(np.asarray(filled).reshape(-1)[2:],
                             mean @ w[:, 2:], atol=1e-3)
  # The hidden pixels' values do not matter.
  filled2 = fill(jnp.where(mask, x, 5.0))
  np.testing.assert_array_equal(filled, filled2)


@pytest.mark.slow
def test_anomaly_auroc_is_half_against_itself_and_high_for_outliers():
  model, params, _ = linear_model(sigma=0.3)
  x, _ = jax.jit(lambda k: lf.generate(model, params, k, 1200))(
      jax.random.key(4))
  x = x + 0.3 * jax.random.normal(jax.random.key(5), x.shape)
  keys = jax.random.split(jax.random.key(6), 1200)
  terms = jax.jit(lambda x, k: lf.anomaly_terms(model, params, x, k, 100))
  score_fn = jax.jit(lambda x, k: lf.anomaly_score(model, params, x, k, 100))
  score = np.asarray(score_fn(x, keys))
  assert abs(metrics.auroc(score[:600], score[600:]) - 0.5) < 0.07
  outliers = x + 2.0 * jnp.array([1.0, 1.0, -1.0, 1.0]).reshape(SHAPE)
  s_out = np.asarray(score_fn(outliers, keys))
  assert metrics.auroc(s_out[:600], score[600:]) > 0.95
  err, nlp = terms(x, keys)
  np.testing.assert_allclose(err + nlp, score, rtol=1e-5)
