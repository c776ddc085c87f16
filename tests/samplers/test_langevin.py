"""The Langevin sampler: moments on Gaussians, MALA invariance, options, caching. (coopjax.samplers.langevin)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax.samplers.langevin import langevin


def gaussian_log_prob(x, mean, var):
  return -0.5 * jnp.sum((x - mean) ** 2 / var, axis=-1)


def test_moments_match_gaussian_target():
  mean = jnp.array([1.0, -2.0])
  var = jnp.array([0.5, 2.0])
  x0 = jnp.zeros((20000, 2))
  # Unadjusted Langevin with step s on N(m, v) has stationary variance
  # v / (1 - s^2 / (4 v)); s = 0.1 biases it by < 0.5%. 400 steps mix well
  # past the slowest relaxation time 2 v / s^2 = 400 steps... so use 2000.
  x, info = langevin(gaussian_log_prob, x0, jax.random.key(0), n_steps=2000,
                     step_size=0.1, args=(mean, var))
  x = np.asarray(x)
  # Standard error of the mean with 20000 samples: sqrt(2 / 20000) = 0.01;
  # of the variance: v sqrt(2 / 20000) = 0.02 v. Tolerances are ~4 SE.
  np.testing.assert_allclose(x.mean(0), mean, atol=0.05)
  np.testing.assert_allclose(x.var(0), var, rtol=0.06)
  assert info.log_prob.shape == (2000,)
  assert info.accept_rate.shape == (2000,)


def test_mala_leaves_standard_normal_invariant():
  x0 = jax.random.normal(jax.random.key(1), (20000, 1))
  # A large step: unadjusted Langevin would inflate the variance to
  # 1 / (1 - 1.5^2 / 4) = 2.3; MALA must keep N(0, 1).
  x, info = langevin(gaussian_log_prob, x0, jax.random.key(2), n_steps=50,
                     step_size=1.5, mala=True, args=(0.0, 1.0))
  x = np.asarray(x)
  assert abs(x.mean()) < 0.05
  assert abs(x.var() - 1.0) < 0.06  # ~4 SE of the variance (0.01)
  rates = np.asarray(info.accept_rate)
  # At stationarity MALA with step s on N(0, 1) accepts with probability
  # E[min(1, pi(y) q(x|y) / (pi(x) q(y|x)))] = 0.7461 (numpy Monte Carlo,
  # 4e6 draws, s.e. 0.0002); 1e6 chain-steps here: s.e. ~0.0005.
  assert abs(rates.mean() - 0.7461) < 0.005, rates.mean()
  x_ula, _ = langevin(gaussian_log_prob, x0, jax.random.key(2), n_steps=50,
                      step_size=1.5, args=(0.0, 1.0))
  assert np.var(np.asarray(x_ula)) > 1.8  # the bias MALA removes is real


def test_zero_noise_is_gradient_ascent():
  x0 = jnp.full((3, 2), 4.0)
  x, _ = langevin(gaussian_log_prob, x0, jax.random.key(0), n_steps=1,
                  step_size=0.5, noise_scale=0.0, args=(0.0, 1.0))
  # x + (s^2 / 2) * (-x) = x * (1 - 0.125)
  np.testing.assert_allclose(x, 4.0 * 0.875, rtol=1e-6)


def test_per_example_step_size_and_keys_are_per_row():
  x0 = jnp.full((2, 1), 4.0)
  x, _ = langevin(gaussian_log_prob, x0, jax.random.key(0), n_steps=1,
                  step_size=jnp.array([0.0, 0.5]), noise_scale=0.0,
                  args=(0.0, 1.0))
  np.testing.assert_allclose(np.asarray(x)[:, 0], [4.0, 3.5], rtol=1e-6)
  keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(3),
                                                 jnp.arange(4))
  full, _ = langevin(gaussian_log_prob, jnp.zeros((4, 3)), keys, n_steps=5,
                     step_size=0.3, args=(0.0, 1.0))
  half, _ = langevin(gaussian_log_prob, jnp.zeros((2, 3)), keys[2:],
                     n_steps=5, step_size=0.3, args=(0.0, 1.0))
  # Per-example keys: rows do not depend on which other rows are in the batch.
  np.testing.assert_allclose(full[2:], half, rtol=1e-6)


def test_clipping_options():
  x0 = jnp.full((4, 2), 10.0)
  x, _ = langevin(gaussian_log_prob, x0, jax.random.key(0), n_steps=1,
                  step_size=1.0, noise_scale=0.0, clip_drift=0.1,
                  args=(0.0, 1.0))
  np.testing.assert_allclose(x, 9.9, rtol=1e-6)
  x, _ = langevin(gaussian_log_prob, jnp.zeros((500, 2)), jax.random.key(0),
                  n_steps=3, step_size=2.0, clip_x=(-1.0, 1.0), args=(0.0, 1.0))
  assert float(jnp.max(jnp.abs(x))) <= 1.0
  with pytest.raises(ValueError, match='clip_x'):
    langevin(gaussian_log_prob, x0, jax.random.key(0), n_steps=1,
             step_size=1.0, mala=True, clip_x=(-1.0, 1.0), args=(0.0, 1.0))


@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16])
def test_shapes_and_dtypes_are_kept(dtype):
  x0 = jnp.zeros((3, 4, 4, 2), dtype)

  def log_prob(x):
    return -0.5 * jnp.sum(x.astype(jnp.float32) ** 2, axis=(1, 2, 3))

  x, info = langevin(log_prob, x0, jax.random.key(0), n_steps=2,
                     step_size=0.1)
  assert x.shape == x0.shape and x.dtype == dtype
  assert info.grad_norm.shape == (2,)


def test_new_arrays_of_same_shape_do_not_retrace():
  traces = []

  def log_prob(x, mean):
    traces.append(1)
    return -0.5 * jnp.sum((x - mean) ** 2, axis=-1)

  for seed in range(3):
    x0 = jnp.asarray(np.full((8, 2), seed, np.float32))
    langevin(log_prob, x0, jax.random.key(seed),
             n_steps=3, step_size=0.1, args=(jnp.ones(2) * seed,))
  n_after_first = len(traces)
  langevin(log_prob, jnp.zeros((8, 2)), jax.random.key(9), n_steps=3,
           step_size=0.2, args=(jnp.zeros(2),))
  assert len(traces) == n_after_first
  langevin(log_prob, jnp.zeros((9, 2)), jax.random.key(9), n_steps=3,
           step_size=0.2, args=(jnp.zeros(2),))
  assert len(traces) > n_after_first  # a new shape does retrace


def test_per_chain_info_and_the_documented_key_use():
  x0 = jax.random.normal(jax.random.key(4), (5, 3))
  key = jax.random.key(5)
  x, info = langevin(gaussian_log_prob, x0, key, n_steps=2, step_size=0.5,
                     noise_scale=0.7, args=(1.0, 1.0))
  for field in ('chain_log_prob', 'chain_grad_norm', 'accepted',
                'acceptance_prob'):
    assert getattr(info, field).shape == (2, 5)
  np.testing.assert_allclose(info.chain_log_prob[0],
                             gaussian_log_prob(x0, 1.0, 1.0), rtol=1e-6)
  np.testing.assert_allclose(info.log_prob, info.chain_log_prob.mean(1),
                             rtol=1e-6)
  np.testing.assert_allclose(info.chain_grad_norm[0],
                             jnp.linalg.norm(x0 - 1.0, axis=-1), rtol=1e-6)
  # Step k draws its noise from split(key, (n_steps, 2))[k, 0].
  keys = jax.random.split(key, (2, 2))
  y = x0
  for k in range(2):
    y = (y + 0.125 * (1.0 - y) +
         0.5 * 0.7 * jax.random.normal(keys[k, 0], y.shape))
  np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_zero_steps_and_pytree_clamp():
  x0 = {'a': jnp.ones((4, 2)), 'b': jnp.zeros((4,))}

  def log_prob(p):
    return -0.5 * (jnp.sum(p['a'] ** 2, -1) + p['b'] ** 2)

  x, info = langevin(log_prob, x0, jax.random.key(0), n_steps=0,
                     step_size=0.1)
  assert jax.tree.all(jax.tree.map(jnp.array_equal, x, x0))
  assert info.chain_log_prob.shape == (0, 4)
  mask = {'a': jnp.array([True, False]), 'b': jnp.zeros((4,), bool)}
  values = {'a': jnp.full((2,), 7.0), 'b': jnp.zeros(4)}
  x, _ = langevin(log_prob, x0, jax.random.key(0), n_steps=3, step_size=0.3,
                  clamp=(mask, values))
  np.testing.assert_array_equal(x['a'][:, 0], 7.0)
  assert not np.allclose(x['a'][:, 1], 1.0) and not np.allclose(x['b'], 0.0)
