"""coopjax.coopflow.losses: the two losses' gradients on the revised samples,
dequantisation, the run-time pretraining switch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import coopflow, flows, rng

from helpers.coopflow_models import point_model, image_model, init, images

# Over ~5 s each on 2 CPU cores (compiling); deselected by -m "not slow".
pytestmark = pytest.mark.slow


def test_gradients_are_those_of_the_two_losses_on_the_revised_samples():
  model = point_model(n_steps=3, step_size=0.5, clip_x=None)
  x = jax.random.normal(jax.random.key(3), (16, 2))
  params = init(model, x)
  keys = rng.example_keys(jax.random.key(4), 0, 16)
  grads, _, metrics = coopflow.loss_and_grads(model, params, {}, {'x': x},
                                              keys)
  k_z, k_chain, _ = rng.split_each(keys, 3)
  z = rng.per_example_normal(k_z, (2,))
  x0 = coopflow.propose(model, params['flow'], z)
  x_k, info = coopflow.refine(model, params['ebm'], x0, k_chain)
  # the chain's figures: its first step's gradient norm, the distance moved
  np.testing.assert_allclose(metrics['grad_norm_start'], info.grad_norm[0],
                             rtol=1e-5)
  assert info.grad_norm[0] != info.grad_norm[1]
  np.testing.assert_allclose(
      metrics['revision_dist'],
      np.mean(np.linalg.norm(np.asarray(x_k - x0), axis=-1)), rtol=1e-5)
  g_flow = jax.grad(lambda p: -jnp.mean(
      coopflow.flow_log_prob(model, p, x_k)))(params['flow'])
  g_ebm = jax.grad(lambda p: jnp.mean(coopflow.energy(model, p, x_k)) -
                   jnp.mean(coopflow.energy(model, p, x)))(params['ebm'])
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  jax.tree_util.tree_map(close, grads['flow'], g_flow)
  jax.tree_util.tree_map(close, grads['ebm'], g_ebm)
  np.testing.assert_allclose(metrics['flow_loss'], -jnp.mean(
      coopflow.flow_log_prob(model, params['flow'], x_k)), rtol=1e-5)
  # Pretraining: maximum likelihood on the data, no EBM gradient.
  grads, _, _ = coopflow.loss_and_grads(model, params, {}, {'x': x}, keys,
                                        pretrain_flow=True)
  assert set(grads) == {'flow'}
  jax.tree_util.tree_map(close, grads['flow'], jax.grad(lambda p: -jnp.mean(
      coopflow.flow_log_prob(model, p, x)))(params['flow']))


def test_flow_learns_from_dequantised_revised_samples_for_discrete_data():
  # With dequant_bins set, the flow's maximum likelihood sees the revised
  # samples re-binned (each uniform in its own bin), so samples the chain
  # clipped to the box edge do not form a point mass.
  model = image_model(n_steps=3, step_size=0.5, dequant_bins=17)
  x = images(8)
  params = init(model, x)
  keys = rng.example_keys(jax.random.key(5), 0, 8)
  grads, _, metrics = coopflow.loss_and_grads(model, params, {}, {'x': x},
                                              keys)
  k_z, k_chain, k_deq = rng.split_each(keys, 3)
  z = rng.per_example_normal(k_z, (model.latent_dim,))
  x_k, _ = coopflow.refine(model, params['ebm'],
                           coopflow.propose(model, params['flow'], z), k_chain)
  noisy = jax.vmap(lambda k, a: flows.uniform_dequantize(k, a, 17, snap=False))(
      k_deq, x_k)
  bin_of = lambda a: jnp.clip(jnp.floor((a + 1.0) * 8.5), 0, 16)
  np.testing.assert_array_equal(bin_of(noisy), bin_of(x_k))
  nll = lambda p: -jnp.mean(coopflow.flow_log_prob(model, p, noisy))
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  jax.tree_util.tree_map(close, grads['flow'], jax.grad(nll)(params['flow']))
  np.testing.assert_allclose(metrics['flow_loss'], nll(params['flow']),
                             rtol=1e-5)
  # The undequantised samples give a different loss: the noise is really there.
  assert abs(float(metrics['flow_loss']) + float(jnp.mean(
      coopflow.flow_log_prob(model, params['flow'], x_k)))) > 1e-3


def test_run_time_pretraining_switch_equals_the_two_static_computations():
  model = image_model(n_steps=2, step_size=0.5, dequant_bins=17)
  x = images(8)
  params = init(model, x)
  keys = rng.example_keys(jax.random.key(6), 0, 8)
  switched = jax.jit(lambda flag: coopflow.loss_and_grads(
      model, params, {}, {'x': x}, keys, pretrain_flow=flag))
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  for flag in (True, False):
    grads, _, metrics = switched(jnp.asarray(flag))
    ref, _, ref_metrics = coopflow.loss_and_grads(
        model, params, {}, {'x': x}, keys, pretrain_flow=flag)
    jax.tree_util.tree_map(close, grads['flow'], ref['flow'])
    assert float(metrics['pretraining']) == float(flag)
    close(metrics['flow_loss'], ref_metrics['flow_loss'])
    if flag:  # the EBM gets exactly zero while pretraining
      assert set(ref) == {'flow'}
      for leaf in jax.tree_util.tree_leaves(grads['ebm']):
        assert not np.any(np.asarray(leaf))
    else:
      jax.tree_util.tree_map(close, grads['ebm'], ref['ebm'])
      close(metrics['ebm_loss'], ref_metrics['ebm_loss'])


def test_energy_l2_penalty_against_a_direct_computation():
  model = point_model(n_steps=1, step_size=0.5, clip_x=None, energy_l2=0.3)
  x = jax.random.normal(jax.random.key(3), (6, 2))
  xs = jax.random.normal(jax.random.key(4), (5, 2)) + 1.0
  params = init(model, x)
  apply = jax.jit(lambda a: model.ebm.apply({'params': params['ebm']}, a,
                                            jnp.zeros(len(a))))
  fd, fs = (np.asarray(apply(a), np.float64) for a in (x, xs))
  loss, aux = jax.jit(lambda p: coopflow.ebm_loss(model, p, x, xs))(
      params['ebm'])
  want = fs.mean() - fd.mean() + 0.3 * (np.mean(fd ** 2) + np.mean(fs ** 2))
  np.testing.assert_allclose(loss, want, rtol=1e-5)
  np.testing.assert_allclose(aux['f_data'], fd.mean(), rtol=1e-5)
  np.testing.assert_allclose(aux['f_sample'], fs.mean(), rtol=1e-5)
  assert abs(0.3 * (np.mean(fd ** 2) + np.mean(fs ** 2))) > 1e-4
