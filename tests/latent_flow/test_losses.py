"""coopjax.latent_flow.losses: masked (NaN) pixels do not reach the likelihood."""

import jax
import jax.numpy as jnp
import flax.linen as nn
import numpy as np
import pytest

from coopjax import latent_flow as lf

from helpers.latent_flow_models import SHAPE, linear_model

# Over ~5 s each on 2 CPU cores (compiling); deselected by -m "not slow".
pytestmark = pytest.mark.slow


def test_masked_likelihood_ignores_masked_pixels_exactly():
  model, params, _ = linear_model()
  z = jnp.array([[0.3, -1.0], [1.2, 0.1]])
  x = jnp.array(np.random.default_rng(0).normal(size=(2,) + SHAPE), jnp.float32)
  mask = np.array([True, False, True, False]).reshape(SHAPE)
  x2 = jnp.where(mask, x, 1e3)
  f = lambda z, x: jnp.sum(lf.log_joint(model, params, z, x, mask))
  assert f(z, x) == f(z, x2)
  np.testing.assert_array_equal(jax.grad(f)(z, x), jax.grad(f)(z, x2))
  assert f(z, x) != f(z, x.at[0, 0, 0, 0].add(1.0))  # observed pixels count
  # In training batches NaN marks the missing pixels.
  keys = jax.random.split(jax.random.key(1), 2)
  step = jax.jit(lambda b: lf.loss_and_grads(model, params, {}, b, keys))
  grads, _, m = step({'x': jnp.where(mask, x, jnp.nan)})
  assert all(np.all(np.isfinite(v))
             for v in jax.tree_util.tree_leaves((grads, m)))
  z_k = lf.refine(model, params, jnp.where(mask, x, 0.0), keys, mask)[0]
  direct = jax.grad(lambda p: lf.generator_loss(model, p, z_k, x, mask))(
      params['gen'])
  np.testing.assert_allclose(grads['gen']['Dense_0']['kernel'],
                             direct['Dense_0']['kernel'], rtol=1e-5)
  full = step({'x': x})[0]
  assert not np.allclose(grads['gen']['Dense_0']['kernel'],
                         full['gen']['Dense_0']['kernel'])


def test_mse_metric_is_the_mean_over_observed_pixels():
  model, params, w = linear_model(n_steps=3)
  x = np.random.default_rng(1).normal(size=(3,) + SHAPE).astype(np.float32)
  x[0, 0, 1, 0] = x[2, 1, 1, 0] = np.nan
  keys = jax.random.split(jax.random.key(2), 3)
  step = jax.jit(lambda b: lf.loss_and_grads(model, params, {}, b, keys))
  _, _, m = step({'x': jnp.asarray(x)})
  mask = np.isfinite(x)
  z_k = np.asarray(jax.jit(lambda a, m: lf.refine(model, params, a, keys, m))(
      jnp.asarray(np.where(mask, x, 0)), jnp.asarray(mask))[0], np.float64)
  recon = (z_k @ w).reshape(x.shape)
  want = np.sum(np.where(mask, x - recon, 0.0) ** 2) / mask.sum()
  np.testing.assert_allclose(m['mse'], want, rtol=1e-5)
  np.testing.assert_allclose(m['z_norm'],
                             np.mean(np.linalg.norm(z_k, axis=-1)), rtol=1e-5)
  # NaN pixels are zeroed, and the mask says which were observed
  zeroed, seen = lf.observed(jnp.asarray(x))
  np.testing.assert_array_equal(seen, mask)
  np.testing.assert_array_equal(zeroed, np.where(mask, x, 0.0))
  # one observed pixel: the mse is its squared error; none: 0, not NaN
  one = np.full_like(x, np.nan)
  one[1, 0, 0, 0] = 0.7
  z1 = np.asarray(lf.refine(model, params, jnp.asarray(np.nan_to_num(one)),
                            keys, jnp.asarray(np.isfinite(one)))[0])
  np.testing.assert_allclose(step({'x': jnp.asarray(one)})[2]['mse'],
                             (0.7 - (z1 @ w)[1, 0]) ** 2, rtol=1e-4)
  assert step({'x': jnp.full_like(x, np.nan)})[2]['mse'] == 0.0


class ShiftPrior(nn.Module):
  """``z ~ N(mu, I)``, a prior with one parameter vector."""

  def setup(self):
    self.mu = self.param('mu', nn.initializers.zeros, (2,))

  def __call__(self, z):
    return self.log_prob(z)

  def log_prob(self, z):
    return (-0.5 * jnp.sum((z - self.mu) ** 2, axis=-1) -
            z.shape[-1] * 0.5 * np.log(2 * np.pi))


def test_prior_loss_and_its_gradient_against_a_direct_computation():
  model, params, _ = linear_model(prior=ShiftPrior(), n_steps=2)
  mu = np.array([0.5, -0.2], np.float32)
  params = {**params, 'prior': {'mu': jnp.asarray(mu)}}
  x = np.random.default_rng(3).normal(size=(3,) + SHAPE).astype(np.float32)
  keys = jax.random.split(jax.random.key(4), 3)
  grads, _, m = jax.jit(lambda b: lf.loss_and_grads(model, params, {}, b,
                                                    keys))({'x': x})
  z_k = np.asarray(lf.refine(model, params, jnp.asarray(x), keys,
                             np.ones_like(x, bool))[0], np.float64)
  nlp = np.mean(0.5 * np.sum((z_k - mu) ** 2, -1) + np.log(2 * np.pi))
  np.testing.assert_allclose(m['prior_loss'], nlp, rtol=1e-5)
  np.testing.assert_allclose(m['neg_log_prior'], nlp, rtol=1e-5)
  np.testing.assert_allclose(lf.prior_loss(model, params['prior'],
                                           jnp.asarray(z_k, jnp.float32)),
                             nlp, rtol=1e-5)
  # d/dmu of mean 0.5 ||z - mu||^2 = -mean(z - mu)
  np.testing.assert_allclose(grads['prior']['mu'], -np.mean(z_k - mu, 0),
                             rtol=1e-4, atol=1e-6)
