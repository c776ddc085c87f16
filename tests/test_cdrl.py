"""CDRL pure functions against closed forms on a quadratic energy and direct gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import cdrl, rng
from coopjax.cdrl import schedules
from coopjax.models.mlp import MLPEnergy, MLPInitializer


class QuadraticEnergy(nn.Module):
  """``f(y) = -a/2 ||y - m||^2`` with the EBM protocol of coopjax.cdrl."""
  dim: int = 2
  a: float = 1.0

  def setup(self):
    self.m = self.param('m', nn.initializers.constant(-1.0), (self.dim,))

  def time_features(self, logsnr, update_stats=False):
    del update_stats
    return (logsnr[:, None],)

  def energy(self, x, features, update_stats=False):
    del features, update_stats
    return -0.5 * self.a * jnp.sum((x - self.m) ** 2, axis=-1)

  def __call__(self, x, logsnr, update_stats=False):
    return self.energy(x, self.time_features(logsnr))


def toy_levels():
  return schedules.make_levels(schedules.cosine_abar(), 2e-3, 'one')


def quadratic_model(t, n_steps, **kw):
  # f = -a/2 ||y - m||^2 with a = 3 s_t^2 / beta_t: the conditional has
  # precision (3 + tie) / beta_t, and the chain's mean relaxes at rate
  # s_t^2 * precision / 2 >= 3e-3 per step.
  levels = toy_levels()
  a = float(3 * levels.step_size_sq[t] / levels.beta[t])
  return cdrl.CDRLModel(QuadraticEnergy(a=a), None, levels, n_steps, **kw), a


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


def test_training_pairs_share_noise_and_scale():
  levels = toy_levels()
  model = cdrl.CDRLModel(QuadraticEnergy(), None, levels, 2)
  x = jax.random.normal(jax.random.key(0), (64, 2))
  keys = rng.example_keys(jax.random.key(1), 0, 64)
  t, x_t, y_data = cdrl.training_pairs(model, x, keys)
  t = np.asarray(t)
  assert t.min() >= 1 and t.max() <= 6 and len(np.unique(t)) == 6
  abar = levels.abar
  eps_t = (x_t - np.sqrt(abar[t])[:, None] * x) / np.sqrt(1 - abar[t])[:, None]
  x_prev = y_data / levels.y_scale[t][:, None]
  eps_p = (x_prev - np.sqrt(abar[t - 1])[:, None] * x) / np.sqrt(
      1 - abar[t - 1])[:, None]
  np.testing.assert_allclose(eps_t, eps_p, atol=2e-3)


def mlp_model(initializer=True):
  levels = schedules.make_levels(schedules.cosine_abar(), 2e-3, 'inv_sigma0')
  ebm = MLPEnergy(width=8, mults=(1, 2), temb_dim=16)
  init = MLPInitializer(width=32, temb_dim=16) if initializer else None
  return cdrl.CDRLModel(ebm, init, levels, 3)


def init_all(model, key=0):
  k1, k2 = jax.random.split(jax.random.key(key))
  x, ls = jnp.zeros((2, 2)), jnp.zeros(2)
  ev = model.ebm.init(k1, x, ls)
  params = {'ebm': ev['params']}
  if model.initializer is not None:
    ip = model.initializer.init(k2, x, ls)['params']
    # Non-zero last layer so the initializer gradient is not trivially zero.
    params['init'] = jax.tree_util.tree_map(
        lambda p: p + 0.1 * jax.random.normal(k2, p.shape), ip)
  return params, {'ebm': ev['batch_stats']}


def test_gradients_equal_direct_computation():
  model = mlp_model()
  params, stats = init_all(model)
  x = 3.0 * jax.random.normal(jax.random.key(5), (32, 2))
  keys = rng.example_keys(jax.random.key(6), 0, 32)
  grads, new_stats, metrics = cdrl.loss_and_grads(model, params, stats, x, keys)

  # The same quantities the slow, obvious way: per-example logsnr through
  # __call__ (no cached features) and jax.grad of the written-out losses.
  k_pair, k_init, k_chain = rng.split_each(keys, 3)
  t, x_t, y_data = cdrl.training_pairs(model, x, k_pair)
  y0 = cdrl.propose(model, params['init'], x_t, t, k_init)
  ev = {'params': params['ebm'], 'batch_stats': stats['ebm']}
  y_k, _ = cdrl.refine(model, ev, y0, x_t, t, k_chain)
  w = model.levels.loss_weight[np.asarray(t)]
  logsnr = model.levels.logsnr[np.asarray(t) - 1]

  def ebm_loss(p):
    # One power iteration from the old vectors, as in the train step.
    v = {'params': p, 'batch_stats': stats['ebm']}
    f = lambda y: model.ebm.apply(v, y, logsnr, True,
                                  mutable=['batch_stats'])[0]
    return jnp.mean(w * (f(y_k) - f(y_data)))

  def init_loss(p):
    y = cdrl.propose(model, p, x_t, t, k_init)
    return jnp.mean(jnp.sum((y_k - y) ** 2, axis=-1))

  want_ebm = jax.grad(ebm_loss)(params['ebm'])
  want_init = jax.grad(init_loss)(params['init'])
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-6)
  jax.tree_util.tree_map(close, grads['ebm'], want_ebm)
  jax.tree_util.tree_map(close, grads['init'], want_init)
  np.testing.assert_allclose(metrics['ebm_loss'], ebm_loss(params['ebm']),
                             rtol=1e-4)
  # Spectral-norm statistics were updated (one power iteration).
  changed = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)),
                                   stats['ebm'], new_stats['ebm'])
  assert any(jax.tree_util.tree_leaves(changed))


def test_drl_chain_starts_at_x_t():
  model = mlp_model(initializer=False)
  x_t = jnp.ones((4, 2))
  assert cdrl.propose(model, None, x_t, jnp.ones(4, jnp.int32),
                      rng.example_keys(jax.random.key(0), 0, 4)) is x_t
  params, stats = init_all(model)
  grads, _, metrics = cdrl.loss_and_grads(
      model, params, stats, jnp.ones((8, 2)),
      rng.example_keys(jax.random.key(0), 0, 8))
  assert set(grads) == {'ebm'} and 'init_loss' not in metrics


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
