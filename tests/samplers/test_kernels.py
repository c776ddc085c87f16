"""The one-step kernels: target moments, pytrees, keys, vmap, per-chain info. (coopjax.samplers.kernels)"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax.samplers import kernels
from coopjax.samplers.langevin import langevin
from helpers import sampler_targets as targets

N_CHAINS = 4000


# Step sizes and lengths: ULA with s = 0.2 relaxes the Gaussian's slow
# direction (variance 1.8) in 2 * 1.8 / s^2 = 90 steps and its stationary
# variance is off by < 1% (v / (1 - s^2 / 4v) on the 0.2 direction), well
# under the standard error; the banana's x1 needs more steps. MALA (s = 0.8,
# acceptance ~0.6) is exact. 4000 independent chains, final states only.
@pytest.mark.parametrize('name,mala,step_size,n_steps', [
    ('gaussian', False, 0.2, 600), ('gaussian', True, 0.8, 300),
    ('banana', False, 0.2, 2000), ('banana', True, 0.8, 1000)])
def test_chains_reach_the_targets_moments(name, mala, step_size, n_steps):
  x, info = langevin(getattr(targets, name), jnp.zeros((N_CHAINS, 2)),
                     jax.random.key(0), n_steps=n_steps, step_size=step_size,
                     mala=mala)
  z = targets.z_scores(x, targets.TRUTH[name])
  # Each statistic within 5 standard errors (estimated from the 4000 draws)
  # of its true value: a false alarm has probability ~1e-6 per statistic,
  # while a drift off by a factor 2 (s^2 instead of s^2/2) is off by > 20 SE.
  assert all(abs(v) < 5 for v in z.values()), z
  if mala:
    assert 0.4 < float(jnp.mean(info.accept_rate)) < 0.8


def dict_log_prob(p):
  # The banana on {'a': [B], 'b': [B, 1]}: the pytree form of x [B, 2].
  return targets.banana(jnp.concatenate([p['a'][:, None], p['b']], axis=-1))


def as_dict(x):
  return {'a': x[:, 0], 'b': x[:, 1:]}


@pytest.mark.parametrize('per_chain_keys', [False, True])
@pytest.mark.parametrize('mala', [False, True])
def test_pytree_position_gives_the_chain_of_its_flattened_array(
    per_chain_keys, mala):
  x0 = jax.random.normal(jax.random.key(1), (16, 2))
  key = jax.random.key(2)
  key = jax.random.split(key, 16) if per_chain_keys else key
  x, info = langevin(targets.banana, x0, key, n_steps=20, step_size=0.4,
                     mala=mala)
  p, p_info = langevin(dict_log_prob, as_dict(x0), key, n_steps=20,
                       step_size=0.4, mala=mala)
  assert np.all(np.isfinite(x)) and p['a'].shape == (16,) and p['b'].shape == (16, 1)
  np.testing.assert_allclose(np.asarray(p['a']), np.asarray(x[:, 0]),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(p['b']), np.asarray(x[:, 1:]),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(p_info.accepted, info.accepted)
  if mala:
    assert 0 < float(jnp.mean(info.accept_rate)) < 1  # both branches taken


def scalar_banana(x):
  return targets.banana(x[None])[0]


def test_one_chain_kernels_vmap_to_the_batched_kernels():
  x0 = jax.random.normal(jax.random.key(3), (8, 2))
  keys = jax.random.split(jax.random.key(4), 8)

  @jax.jit
  def one(k, x):
    state = kernels.init(x, scalar_banana)
    state, _ = kernels.ula_step(k, state, scalar_banana, step_size=0.5)
    return kernels.mala_step(k, state, scalar_banana, step_size=0.9)

  @jax.jit
  def batch(k, x):
    state = kernels.init(x, targets.banana)
    state, _ = kernels.ula_step(k, state, targets.banana, step_size=0.5)
    return kernels.mala_step(k, state, targets.banana, step_size=0.9)

  s1, i1 = jax.vmap(one)(keys, x0)
  s2, i2 = batch(keys, x0)
  assert i2.accepted.shape == i2.acceptance_prob.shape == (8,)
  for a, b in zip(jax.tree.leaves((s1, i1)), jax.tree.leaves((s2, i2))):
    np.testing.assert_allclose(np.asarray(a, np.float32),
                               np.asarray(b, np.float32), rtol=1e-5, atol=1e-6)
  # Info is per chain and describes the returned state.
  np.testing.assert_array_equal(i2.log_prob, s2.log_prob)
  np.testing.assert_allclose(i2.grad_norm, jnp.linalg.norm(s2.grad, axis=-1),
                             rtol=1e-6)
  np.testing.assert_allclose(s2.log_prob, targets.banana(s2.position),
                             rtol=1e-6)


def test_mala_step_rejects_and_accepts_per_chain():
  # Two chains on N(0, I): a tiny step (almost always accepted) and a huge
  # one (almost never); per-chain step sizes and per-chain info.
  def log_prob(x):
    return -0.5 * jnp.sum(x ** 2, axis=-1)

  state = kernels.init(jnp.zeros((2, 4)), log_prob)
  step = jax.jit(functools.partial(kernels.mala_step, log_prob_fn=log_prob,
                                   step_size=jnp.array([0.01, 30.0])))
  probs = []
  for k in jax.random.split(jax.random.key(0), 50):
    state, info = step(k, state)
    probs.append(info.acceptance_prob)
    np.testing.assert_allclose(info.log_prob, log_prob(state.position),
                               rtol=1e-6)
  probs = np.asarray(probs)
  assert probs[:, 0].mean() > 0.99 and probs[:, 1].mean() < 0.01


def test_one_gradient_per_mala_step():
  calls = []

  def log_prob(x):
    jax.debug.callback(lambda: calls.append(1))
    return -0.5 * jnp.sum(x ** 2, axis=-1)

  state = jax.block_until_ready(
      jax.jit(kernels.init, static_argnums=1)(jnp.zeros((3, 2)), log_prob))
  assert len(calls) == 1
  step = jax.jit(lambda k, s: kernels.mala_step(k, s, log_prob, step_size=0.5))
  for k in jax.random.split(jax.random.key(0), 4):
    state, _ = step(k, state)
  jax.block_until_ready(state)
  assert len(calls) == 5   # init + one per step


KEY_KINDS = {
    'typed': lambda seed: jax.random.key(seed),
    'legacy': lambda seed: jax.random.PRNGKey(seed),
    'typed batch': lambda seed: jax.random.split(jax.random.key(seed), 6),
    'legacy batch': lambda seed: jax.random.split(jax.random.PRNGKey(seed), 6),
}


def test_typed_and_legacy_keys_draw_the_same_chains():
  x0 = jnp.zeros((6, 2))
  out = {kind: langevin(targets.gaussian, x0, make(7), n_steps=3,
                        step_size=0.5)[0] for kind, make in KEY_KINDS.items()}
  np.testing.assert_array_equal(out['typed'], out['legacy'])
  np.testing.assert_array_equal(out['typed batch'], out['legacy batch'])
  assert not np.allclose(out['typed'], out['typed batch'])
  step = jax.jit(lambda k, s: kernels.mala_step(k, s, targets.gaussian,
                                                step_size=0.5))
  state = kernels.init(x0, targets.gaussian)
  for kind in ('legacy', 'legacy batch'):
    new, info = step(KEY_KINDS[kind](1), state)
    assert new.position.shape == (6, 2) and info.accepted.shape == (6,)


@pytest.mark.parametrize('bad', [3, jnp.zeros((2,), jnp.float32),
                                 jnp.zeros((3,), jnp.uint32)])
def test_a_key_that_is_not_a_key_is_refused(bad):
  with pytest.raises(TypeError, match=r'jax\.random\.key\(seed\).*'
                     r'jax\.random\.PRNGKey'):
    langevin(targets.gaussian, jnp.zeros((6, 2)), bad, n_steps=1,
             step_size=0.5)


def test_wrong_batch_shapes_are_refused():
  x0 = jnp.zeros((6, 2))
  with pytest.raises(ValueError, match=r'one key per chain \(batch shape '
                     r'\(6,\)\); got keys of batch shape \(5,\)'):
    langevin(targets.gaussian, x0, jax.random.split(jax.random.key(0), 5),
             n_steps=1, step_size=0.5)
  with pytest.raises(ValueError, match=r'step_size must be a scalar or one '
                     r'value per chain'):
    langevin(targets.gaussian, x0, jax.random.key(0), n_steps=1,
             step_size=jnp.ones(5))
  with pytest.raises(ValueError, match='one log-density per chain'):
    kernels.init({'a': jnp.zeros((6,)), 'b': jnp.zeros((5, 2))},
                 lambda p: jnp.sum(p['b'], -1))


def test_ula_and_mala_default_to_unit_noise():
  """``x + (s^2/2) grad log p + s eps``: the noise scale defaults to 1."""
  log_prob = lambda x: -0.5 * jnp.sum(x ** 2, axis=-1)
  state = kernels.init(jnp.full((3, 2), 0.5), log_prob)
  key, s = jax.random.key(3), 0.3
  mean = 0.5 - s ** 2 / 2 * 0.5
  (x, _), (x1, _), (x2, _) = [
      kernels.ula_step(key, state, log_prob, step_size=s, **kw)
      for kw in ({}, {'noise_scale': 1.0}, {'noise_scale': 2.0})]
  np.testing.assert_array_equal(x.position, x1.position)
  np.testing.assert_allclose(x.position - mean, (x2.position - mean) / 2,
                             rtol=1e-5)
  assert np.all(x.position != mean)
  np.testing.assert_array_equal(
      kernels.ula_position(key, state, step_size=s), x.position)
  (m, _), (m1, _) = [kernels.mala_step(key, state, log_prob, step_size=s, **kw)
                     for kw in ({}, {'noise_scale': 1.0})]
  np.testing.assert_array_equal(m.position, m1.position)
