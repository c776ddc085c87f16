"""coopjax's MALA and blackjax's agree in distribution; so do the diagnostics.

Skipped when blackjax (a test-only dependency, in the dev extra) is missing.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax.samplers import diagnostics
from coopjax.samplers.langevin import langevin
from helpers import sampler_targets as targets

blackjax = pytest.importorskip('blackjax')

N_CHAINS, N_STEPS, S = 4000, 1000, 0.8   # as in test_kernels: one compile


def test_mala_agrees_with_blackjax_at_epsilon_s2_over_2():
  x, info = langevin(targets.banana, jnp.zeros((N_CHAINS, 2)),
                     jax.random.key(0), n_steps=N_STEPS, step_size=S,
                     mala=True)
  mala = blackjax.mala(lambda p: targets.banana(p), S ** 2 / 2)

  @jax.jit
  def run(key):
    def body(state, k):
      state, i = jax.vmap(mala.step)(jax.random.split(k, N_CHAINS), state)
      return state, i.acceptance_rate
    state = jax.vmap(mala.init)(jnp.zeros((N_CHAINS, 2)))
    state, rates = jax.lax.scan(body, state,
                                jax.random.split(key, N_STEPS))
    return state.position, rates

  y, rates = run(jax.random.key(1))
  ours, theirs = targets.statistics(np.asarray(x, np.float64)), \
      targets.statistics(np.asarray(y, np.float64))
  for name in ours:
    a, b = ours[name], theirs[name]
    z = (a.mean() - b.mean()) / np.sqrt((a.var() + b.var()) / N_CHAINS)
    assert abs(z) < 5, (name, z)   # two-sample z of independent draws
  # Same mean acceptance once stationary (standard error ~0.001); with
  # blackjax's step at s^2 instead of s^2/2 it would be ~0.45, not ~0.63.
  ours_rate = float(jnp.mean(info.acceptance_prob[N_STEPS // 2:]))
  theirs_rate = float(jnp.mean(rates[N_STEPS // 2:]))
  assert abs(ours_rate - theirs_rate) < 0.01, (ours_rate, theirs_rate)


def test_ess_and_split_rhat_agree_with_blackjax():
  rng = np.random.default_rng(0)
  x = np.empty((300, 4, 3))
  x[0] = rng.standard_normal((4, 3))
  for t in range(1, 300):    # AR(1), phi = 0.8: ESS ~ 1200 / 9
    x[t] = 0.8 * x[t - 1] + 0.6 * rng.standard_normal((4, 3))
  ess = jax.jit(blackjax.diagnostics.effective_sample_size,
                static_argnames=('chain_axis', 'sample_axis'))(
                    jnp.asarray(x), chain_axis=1, sample_axis=0)
  # Same formula; blackjax's arithmetic differs in details (0.2% on strongly
  # correlated chains). test_diagnostics checks ours against a direct sum.
  np.testing.assert_allclose(diagnostics.effective_sample_size(x), ess,
                             rtol=5e-3)
  halves = jnp.asarray(np.concatenate([x[:150], x[150:]], axis=1))
  rhat = jax.jit(blackjax.diagnostics.potential_scale_reduction,
                 static_argnames=('chain_axis', 'sample_axis'))(
                     halves, chain_axis=1, sample_axis=0)
  np.testing.assert_allclose(diagnostics.split_rhat(x), rhat, rtol=1e-5)
