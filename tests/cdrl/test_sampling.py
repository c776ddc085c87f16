"""coopjax.cdrl.sampling against closed forms on a quadratic energy: refine,
fewer steps, per-example sampling, the Tweedie step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import cdrl, rng

from helpers.cdrl_models import quadratic_model, mlp_model, init_all


@pytest.mark.slow
@pytest.mark.parametrize('t', [2, 6])
def test_refine_samples_the_conditional_gaussian(t):
  model, a = quadratic_model(t, n_steps=3000)
  ev = model.ebm.init(jax.random.key(0), jnp.zeros((1, 2)), jnp.zeros(1))
  n = 4000
  x_t = jnp.ones((n, 2))
  keys = rng.example_keys(jax.random.key(1), 0, n)
  y, info = cdrl.refine(model, ev, x_t, x_t, jnp.full((n,), t), keys)
  lv = model.levels
  precision = a / lv.step_size_sq[t] + lv.tie_mask[t] / lv.beta[t]
  mean = (-a / lv.step_size_sq[t] + lv.tie_mask[t] / lv.beta[t]) / precision
  y = np.asarray(y)
  # ULA's variance bias here is s^2 precision / 4 <= 0.2%; 3000 steps are
  # >= 9 relaxation times of the mean; with 8000 draws the SE of the variance
  # is 1.6%.
  np.testing.assert_allclose(y.mean(), mean, atol=4 * np.sqrt(1 / precision / 8000) + 1e-3)
  np.testing.assert_allclose(y.var(), 1 / precision, rtol=0.07)
  assert info.log_prob.shape == (3000,)


def test_fewer_steps_scale_the_step_size():
  model, a = quadratic_model(2, n_steps=4)
  ev = model.ebm.init(jax.random.key(0), jnp.zeros((1, 2)), jnp.zeros(1))
  y0 = jnp.full((3, 2), 2.0)
  x_t = jnp.zeros((3, 2))
  keys = rng.example_keys(jax.random.key(1), 0, 3)
  y1, _ = cdrl.refine(model, ev, y0, x_t, jnp.full((3,), 2), keys, n_steps=1,
                      noise_scale=0.0)
  lv = model.levels
  s2 = lv.step_size_sq[2] * 4  # sqrt(K / K') = 2 on the step size
  grad = -a * (2.0 + 1.0) / lv.step_size_sq[2] - (2.0 - 0.0) / lv.beta[2]
  np.testing.assert_allclose(y1, 2.0 + 0.5 * s2 * grad, rtol=1e-4)


def test_sampling_is_per_example_and_shapes():
  model = mlp_model()
  params, stats = init_all(model)
  ev = {'params': params['ebm'], 'batch_stats': stats['ebm']}
  run = jax.jit(lambda key, start: cdrl.sample(model, ev, params['init'], key,
                                               4, (2,), start=start))
  full = jax.jit(lambda key: cdrl.sample(model, ev, params['init'], key, 8,
                                         (2,)))
  key = jax.random.key(3)
  x, trace = full(key)
  assert x.shape == (8, 2) and trace.levels.shape == (6, 8, 2)
  assert trace.proposals.shape == (6, 8, 2)
  np.testing.assert_allclose(trace.levels[-1], x)  # no Tweedie step
  a, _ = run(key, 0)
  b, _ = run(key, 4)
  np.testing.assert_allclose(jnp.concatenate([a, b]), x, rtol=1e-5, atol=1e-6)


def test_tweedie_step_matches_closed_form():
  model, a = quadratic_model(1, n_steps=1, tweedie=True)
  ev = model.ebm.init(jax.random.key(0), jnp.zeros((1, 2)), jnp.zeros(1))
  x = jnp.array([[0.5, -0.2]])
  lv = model.levels
  sc = lv.y_scale[1]
  score = -a * sc * (sc * x + 1.0) / (0.5 * lv.step_size_sq[1])
  want = (x + (1 - lv.abar[0]) * score) / np.sqrt(lv.abar[0])
  np.testing.assert_allclose(cdrl.tweedie_denoise(model, ev, x), want, rtol=1e-5)
