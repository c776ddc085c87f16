"""coopjax.latent_flow.losses: masked (NaN) pixels do not reach the likelihood."""

import jax
import jax.numpy as jnp
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
  _, _, m = jax.jit(lambda b: lf.loss_and_grads(model, params, {}, b, keys))(
      {'x': jnp.asarray(x)})
  mask = np.isfinite(x)
  z_k = np.asarray(jax.jit(lambda a, m: lf.refine(model, params, a, keys, m))(
      jnp.asarray(np.where(mask, x, 0)), jnp.asarray(mask))[0], np.float64)
  recon = (z_k @ w).reshape(x.shape)
  want = np.sum(np.where(mask, x - recon, 0.0) ** 2) / mask.sum()
  np.testing.assert_allclose(m['mse'], want, rtol=1e-5)
