"""coopjax.cdrl.losses: training pairs, gradients against direct computation,
DRL (no initializer)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import cdrl, rng

from helpers.cdrl_models import QuadraticEnergy, toy_levels, mlp_model, init_all


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


def test_clean_level_share_moves_that_share_to_level_one():
  levels = toy_levels()  # T = 6
  keys = rng.example_keys(jax.random.key(2), 0, 60000)
  uniform = np.asarray(cdrl.training_levels(
      cdrl.CDRLModel(QuadraticEnergy(), None, levels, 2), keys))
  direct = np.asarray(jax.vmap(lambda k: jax.random.randint(k, (), 1, 7))(keys))
  np.testing.assert_array_equal(uniform, direct)  # share 0: the papers' draws
  share = 0.3
  t = np.asarray(cdrl.training_levels(
      cdrl.CDRLModel(QuadraticEnergy(), None, levels, 2,
                     clean_level_share=share), keys))
  moved = t != uniform
  assert np.all(t[moved] == 1)  # a moved example goes to level 1, others keep theirs
  freq = np.bincount(t, minlength=7)[1:] / t.size
  np.testing.assert_allclose(freq[0], share + (1 - share) / 6, atol=0.006)
  np.testing.assert_allclose(freq[1:], (1 - share) / 6, atol=0.006)
  with pytest.raises(ValueError, match='clean_level_share'):
    cdrl.CDRLModel(QuadraticEnergy(), None, levels, 2, clean_level_share=1.0)


@pytest.mark.slow
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
  w = model.levels.loss_weight[np.asarray(t)]
  logsnr = model.levels.logsnr[np.asarray(t) - 1]
  # As the authors' step: a training-mode forward of the positives takes one
  # power iteration; the chain and both energies use the new vectors.
  _, updates = model.ebm.apply({'params': params['ebm'],
                                'batch_stats': stats['ebm']}, y_data, logsnr,
                               True, mutable=['batch_stats'])
  fresh = updates['batch_stats']
  ev = {'params': params['ebm'], 'batch_stats': fresh}
  y_k, _ = cdrl.refine(model, ev, y0, x_t, t, k_chain)

  def ebm_loss(p):
    v = {'params': p, 'batch_stats': fresh}
    f = lambda y: model.ebm.apply(v, y, logsnr, False)
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
  # The statistics returned are those of one power iteration (and moved).
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
      new_stats['ebm'], fresh)
  changed = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)),
                                   stats['ebm'], new_stats['ebm'])
  assert any(jax.tree_util.tree_leaves(changed))


def test_independent_pairs_take_one_forward_step_from_x_prev():
  """DRL's pairs: ``x_t = sqrt(alpha_t^2) x_{t-1} + sqrt(beta_t) eps'`` with
  ``eps'`` a fresh standard normal."""
  levels = toy_levels()
  model = cdrl.CDRLModel(QuadraticEnergy(), None, levels, 2,
                         pair_noise='independent')
  n = 2000
  x = jax.random.normal(jax.random.key(0), (n, 2))
  keys = rng.example_keys(jax.random.key(1), 0, n)
  t, x_t, y_data = map(np.asarray, jax.jit(
      lambda x, k: cdrl.training_pairs(model, x, k))(x, keys))
  x_prev = y_data / levels.y_scale[t][:, None]
  step = (x_t - np.sqrt(levels.alpha_sq[t])[:, None] * x_prev) / np.sqrt(
      levels.beta[t])[:, None]
  # N(0, 1) and independent of x_{t-1}: within 5 standard errors of 4000
  # draws (mean 0.079, variance 0.11, correlation 0.079)
  assert abs(step.mean()) < 5 / np.sqrt(2 * n)
  assert abs(step.var() - 1) < 5 * np.sqrt(2 / (2 * n))
  assert abs(np.corrcoef(step.ravel(), x_prev.ravel())[0, 1]) < 5 / np.sqrt(
      2 * n)


def test_dropout_is_switched_on_only_for_networks_with_dropout():
  from coopjax.cdrl import losses  # pylint: disable=g-import-not-at-top
  from coopjax.models.mlp import MLPEnergy  # pylint: disable=g-import-not-at-top

  class Drop(MLPEnergy):
    dropout: float = 0.0

  assert losses._has_dropout(Drop(width=4, dropout=0.1))  # pylint: disable=protected-access
  assert not losses._has_dropout(Drop(width=4))  # pylint: disable=protected-access
  assert not losses._has_dropout(MLPEnergy(width=4))  # pylint: disable=protected-access


def test_health_metrics_equal_direct_computation():
  # energy_gap = mean f(y_data) - f(y_K); refine_dist_<l> = mean ||y_K - y_0||
  # over the examples that drew level l, each computed the obvious way (a
  # quadratic EBM without initializer: cheap; the chains start at x_t).
  model = cdrl.CDRLModel(QuadraticEnergy(), None, toy_levels(), 3)
  params = {'ebm': model.ebm.init(jax.random.key(0), jnp.zeros((1, 2)),
                                  jnp.zeros(1))['params']}
  x = 3.0 * jax.random.normal(jax.random.key(7), (48, 2))
  keys = rng.example_keys(jax.random.key(8), 0, 48)
  _, _, metrics = cdrl.loss_and_grads(model, params, {'ebm': {}}, x, keys)

  k_pair, _, k_chain = rng.split_each(keys, 3)
  t, x_t, y_data = cdrl.training_pairs(model, x, k_pair)
  ev = {'params': params['ebm'], 'batch_stats': {}}
  y_k, _ = cdrl.refine(model, ev, x_t, x_t, t, k_chain)
  f = lambda y: np.asarray(model.ebm.apply(ev, y, jnp.zeros(len(y))))
  np.testing.assert_allclose(metrics['energy_gap'],
                             np.mean(f(y_data) - f(y_k)), rtol=1e-4, atol=1e-6)
  dist = np.linalg.norm(np.asarray(y_k - x_t), axis=-1)
  t = np.asarray(t)
  assert len(np.unique(t)) == model.num_levels
  for level in range(1, model.num_levels + 1):
    np.testing.assert_allclose(metrics[f'refine_dist_{level}'],
                               dist[t == level].mean(), rtol=1e-4)
  np.testing.assert_allclose(metrics['refine_dist'], dist.mean(), rtol=1e-4)


def test_per_level_means_of_an_undrawn_level_is_zero():
  got = cdrl.losses.per_level_means(jnp.array([1.0, 3.0, 5.0]),
                                    jnp.array([1, 1, 3]), 3, 'd')
  assert {k: float(v) for k, v in got.items()} == {'d_1': 2.0, 'd_2': 0.0,
                                                   'd_3': 5.0}
