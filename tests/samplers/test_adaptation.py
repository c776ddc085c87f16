"""Dual-averaging step-size adaptation lands near its target. (coopjax.samplers.adaptation)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax.samplers import adaptation
from coopjax.samplers import kernels
from coopjax.samplers.langevin import langevin
from helpers import sampler_targets as targets


def test_shared_step_size_lands_within_0_05_of_the_target():
  @jax.jit
  def adapt(key, s0):
    state = kernels.init(jnp.zeros((64, 2)), targets.banana)
    return adaptation.adapt_step_size(key, state, targets.banana, n_steps=400,
                                      step_size=s0)[:2]

  sizes = []
  for s0 in (0.05, 3.0):   # from far below and far above
    state, s = adapt(jax.random.key(0), s0)
    assert s.shape == ()
    # The acceptance of 64 chains x 500 fresh steps at the adapted size.
    _, info = langevin(targets.banana, state.position, jax.random.key(1),
                       n_steps=500, step_size=s, mala=True)
    assert abs(float(jnp.mean(info.acceptance_prob)) - 0.57) < 0.05
    sizes.append(float(s))
  assert abs(np.log(sizes[0] / sizes[1])) < 0.1   # same answer from both ends


def test_per_chain_step_sizes_follow_each_chains_scale():
  # Three groups of 32 chains on N(0, sigma^2 I_3), sigma = 0.1, 1, 10: no
  # shared step size suits them all; per-chain adaptation scales with sigma.
  scales = jnp.repeat(jnp.array([0.1, 1.0, 10.0]), 32)

  def log_prob(x):
    return -0.5 * jnp.sum((x / scales[:, None]) ** 2, axis=-1)

  @jax.jit
  def adapt(key):
    state = kernels.init(jnp.zeros((96, 3)), log_prob)
    return adaptation.adapt_step_size(key, state, log_prob, n_steps=400,
                                      step_size=jnp.ones(96))[:2]

  state, s = adapt(jax.random.key(2))
  assert s.shape == (96,)
  _, info = langevin(log_prob, state.position, jax.random.key(3), n_steps=500,
                     step_size=s, mala=True)
  per_group = np.asarray(info.acceptance_prob).mean(0).reshape(3, 32).mean(1)
  np.testing.assert_allclose(per_group, 0.57, atol=0.05)
  group_s = np.asarray(s).reshape(3, 32).mean(1)
  np.testing.assert_allclose(group_s[1:] / group_s[:-1], 10.0, rtol=0.2)


def test_update_is_the_hoffman_gelman_recursion():
  state = adaptation.dual_averaging_init(0.5)
  alphas = [0.9, 0.1, 0.6]
  for a in alphas:
    state = adaptation.dual_averaging_update(state, jnp.array([a, a]))
  # By hand: Hbar_t, log s_t = mu - sqrt(t)/gamma Hbar_t, the t^-0.75 average.
  mu, hbar, log_avg = np.log(5.0), 0.0, 0.0
  for t, a in enumerate(alphas, 1):
    hbar = (1 - 1 / (t + 10)) * hbar + (0.57 - a) / (t + 10)
    log_s = mu - np.sqrt(t) / 0.05 * hbar
    log_avg = t ** -0.75 * log_s + (1 - t ** -0.75) * log_avg
  np.testing.assert_allclose(state.log_step_size, log_s, rtol=1e-5)
  np.testing.assert_allclose(adaptation.dual_averaging_step_size(state),
                             np.exp(log_avg), rtol=1e-5)
  per_chain = adaptation.dual_averaging_init(jnp.ones(3))
  with pytest.raises(ValueError, match=r'per-chain state\'s shape \(3,\)'):
    adaptation.dual_averaging_update(per_chain, jnp.ones(4))
