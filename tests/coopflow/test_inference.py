"""coopjax.coopflow.inference: reconstruction and interpolation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import coopflow

from helpers.coopflow_models import image_model, init, images

# Over ~5 s each on 2 CPU cores (compiling); deselected by -m "not slow".
pytestmark = pytest.mark.slow


def test_reconstruction_lowers_the_mse_and_masks_only_use_known_pixels():
  model = image_model(n_steps=3, step_size=0.1)
  target = images(4)
  params = init(model, images(8, seed=1))
  z0 = jax.random.normal(jax.random.key(5), (4, 16))
  mask = jnp.asarray(np.arange(16).reshape(1, 4, 4, 1) % 3 != 0)
  fit = jax.jit(lambda t, m: coopflow.reconstruct(
      model, params, t, z0, jax.random.key(6), num_iters=30, lr=0.1, mask=m))
  z, x, losses = fit(target, jnp.ones_like(mask))
  assert float(losses[-1]) < 0.5 * float(losses[0])
  np.testing.assert_allclose(losses[-1], jnp.mean((x - target) ** 2),
                             rtol=1e-5)
  np.testing.assert_allclose(
      x, coopflow.generate(model, params, z, jax.random.key(6)), atol=1e-5)
  # Changing hidden pixels of the target cannot change a masked fit.
  other = jnp.where(mask, target, -target)
  z_a, _, _ = fit(target, mask)
  z_b, _, _ = fit(other, mask)
  np.testing.assert_array_equal(z_a, z_b)


def test_interpolation_ends_reproduce_the_two_images():
  model = image_model()
  params = init(model, images(8, seed=1))
  x_a, x_b = images(3, seed=2), images(3, seed=3)
  path = coopflow.interpolate(model, params, x_a, x_b, num=5)
  assert path.shape == (3, 5, 4, 4, 1)
  np.testing.assert_allclose(path[:, 0], x_a, atol=1e-4)
  np.testing.assert_allclose(path[:, -1], x_b, atol=1e-4)
  assert float(jnp.abs(path[:, 2] - x_a).mean()) > 1e-2
  with pytest.raises(ValueError, match='num >= 2'):
    coopflow.interpolate(model, params, x_a, x_b, num=1)


def test_x0_descent_is_exact_without_chain_and_lowers_the_error_with_it():
  from coopjax.coopflow.inference import reconstruct_x0
  model = image_model()
  x = images(3, seed=5)
  params = init(model, x)
  start = images(3, seed=6)
  key = jax.random.key(0)
  mask = jnp.zeros((3, 4, 4, 1), bool).at[:, :2].set(True)
  fit = jax.jit(lambda t, s, m, n, lr: reconstruct_x0(
      model, params, t, s, key, num_iters=n, lr=lr, mask=m, n_steps=0),
                static_argnums=(3, 4))
  # K = 0: the chain is the identity, and a step of lr 0.5 on sum (x - t)^2
  # lands on the target, on the known pixels only
  x0, xk, losses = fit(x, start, mask, 1, 0.5)
  np.testing.assert_allclose(x0[:, :2], x[:, :2], atol=1e-6)
  np.testing.assert_array_equal(x0[:, 2:], start[:, 2:])
  assert float(losses[-1]) < 1e-10 < float(losses[0])
  # through the unclipped K-step chain the error falls
  _, _, losses = jax.jit(lambda: reconstruct_x0(
      model, params, x, start, key, num_iters=20, lr=0.05, decay=0.99))()
  assert float(losses[-1]) < 0.5 * float(losses[0])
