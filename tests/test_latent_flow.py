"""Latent flow prior + generator: densities, inference, tasks, training."""

import json
import math
import os
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import latent_flow as lf
from coopjax import metrics
from coopjax.trainer import loop as train
from coopjax.latent_flow.algorithm import LatentFlowAlgorithm
from coopjax.data import images
from coopjax.flows import DenseFlow
from coopjax.models.generator import Generator

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'configs'))
import latent_flow_digits  # pylint: disable=g-import-not-at-top,wrong-import-position

SHAPE = (2, 2, 1)  # tiny images for the linear-Gaussian model


def linear_model(sigma=0.5, prior=None, latent_dim=2, **kw):
  """x = W z + sigma eps (a bias-free dense generator), N(0, I) prior."""

  class Linear(nn.Module):

    @nn.compact
    def __call__(self, z):
      return nn.Dense(int(np.prod(SHAPE)), use_bias=False)(z).reshape(
          (-1,) + SHAPE)

  model = lf.LatentFlowModel(Linear(), prior, latent_dim, sigma, **kw)
  w = np.array([[1.0, -0.5, 0.3, 0.8], [0.2, 0.9, -0.7, 0.4]], np.float32)
  return model, {'gen': {'Dense_0': {'kernel': jnp.asarray(w)}}}, w


def gaussian_posterior(w, x, sigma, rows=None):
  """Mean and covariance of z | x for x = W^T z + noise, z ~ N(0, I)."""
  rows = slice(None) if rows is None else rows
  wv = w[:, rows]
  cov = np.linalg.inv(np.eye(w.shape[0]) + wv @ wv.T / sigma ** 2)
  return cov @ wv @ x[rows] / sigma ** 2, cov


def test_log_joint_equals_gaussian_likelihood_plus_flow_log_prob():
  gen = Generator((4, 4, 1), width=4, num_up=1)
  flow = DenseFlow(3, num_steps=2, hidden=8)
  model = lf.LatentFlowModel(gen, flow, 3, sigma=0.3)
  k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
  z = jax.random.normal(k1, (5, 3))
  params = {'gen': gen.init(k2, z)['params'],
            'prior': flow.init(k3, 2 * z + 1)['params']}
  x = jax.random.uniform(k4, (5, 4, 4, 1), minval=-1, maxval=1)
  mask = np.arange(16).reshape(1, 4, 4, 1) % 3 != 0
  g = np.asarray(jax.jit(gen.apply)({'params': params['gen']}, z))
  flow_lp = np.asarray(jax.jit(lambda p, z: flow.apply(
      {'params': p}, z, method=DenseFlow.log_prob))(params['prior'], z))
  joint = jax.jit(lambda p, z, x, m: lf.log_joint(model, p, z, x, m))
  for m in (np.ones((1, 4, 4, 1), bool), mask):
    mm = np.broadcast_to(m, x.shape)
    n = mm.reshape(5, -1).sum(1)
    direct = (-np.sum(((x - g) ** 2 * mm).reshape(5, -1), 1) / (2 * 0.09) -
              0.5 * n * math.log(2 * math.pi * 0.09) + flow_lp)
    np.testing.assert_allclose(joint(params, z, x, m), direct, rtol=1e-5)


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


def test_short_run_langevin_matches_analytic_gaussian_posterior():
  model, params, w = linear_model(sigma=0.5, n_steps=400, step_size=0.1)
  x = np.array([0.8, -0.4, 0.5, 1.1], np.float32)
  n = 4000
  keys = jax.random.split(jax.random.key(2), n)
  xb = jnp.broadcast_to(jnp.asarray(x).reshape(SHAPE), (n,) + SHAPE)
  z, _ = jax.jit(lambda k: lf.refine(model, params, xb, k))(keys)
  mean, cov = gaussian_posterior(w, x, 0.5)
  np.testing.assert_allclose(np.mean(z, 0), mean, atol=0.03)
  np.testing.assert_allclose(np.cov(np.asarray(z).T), cov, atol=0.02,
                             rtol=0.1)
  # Without noise the chain climbs to the posterior mode (= mean here).
  _, z_map = jax.jit(lambda x, k: lf.reconstruct(model, params, x, k, 400))(
      xb[:2], keys[:2])
  np.testing.assert_allclose(z_map, np.stack([mean, mean]), atol=1e-3)


def test_inpainting_keeps_known_pixels_and_uses_only_them():
  model, params, w = linear_model(sigma=0.5)
  x = np.array([0.8, -0.4, 0.5, 1.1], np.float32).reshape((1,) + SHAPE)
  mask = np.array([True, True, False, False]).reshape((1,) + SHAPE)
  keys = jax.random.split(jax.random.key(3), 1)
  fill = jax.jit(lambda x: lf.inpaint(model, params, x, mask, keys, 500))
  filled = fill(jnp.asarray(x))
  np.testing.assert_array_equal(np.asarray(filled)[mask], x[mask])
  mean, _ = gaussian_posterior(w, x.reshape(-1), 0.5, rows=slice(0, 2))
  np.testing.assert_allclose(np.asarray(filled).reshape(-1)[2:],
                             mean @ w[:, 2:], atol=1e-3)
  # The hidden pixels' values do not matter.
  filled2 = fill(jnp.where(mask, x, 5.0))
  np.testing.assert_array_equal(filled, filled2)


def test_anomaly_auroc_is_half_against_itself_and_high_for_outliers():
  model, params, _ = linear_model(sigma=0.3)
  x, _ = jax.jit(lambda k: lf.generate(model, params, k, 1200))(
      jax.random.key(4))
  x = x + 0.3 * jax.random.normal(jax.random.key(5), x.shape)
  keys = jax.random.split(jax.random.key(6), 1200)
  terms = jax.jit(lambda x, k: lf.anomaly_terms(model, params, x, k, 100))
  score_fn = jax.jit(lambda x, k: lf.anomaly_score(model, params, x, k, 100))
  score = np.asarray(score_fn(x, keys))
  assert abs(metrics.auroc(score[:600], score[600:]) - 0.5) < 0.07
  outliers = x + 2.0 * jnp.array([1.0, 1.0, -1.0, 1.0]).reshape(SHAPE)
  s_out = np.asarray(score_fn(outliers, keys))
  assert metrics.auroc(s_out[:600], score[600:]) > 0.95
  err, nlp = terms(x, keys)
  np.testing.assert_allclose(err + nlp, score, rtol=1e-5)


def tiny_config(variant='', **train_overrides):
  c = latent_flow_digits.get_config(variant)
  c.data.batch_size = 8
  c.model.update(latent_dim=4, gen_width=4, flow_steps=2, flow_hidden=8,
                 langevin_steps=2)
  c.train.update(steps=2, log_every=1, ckpt_every=2, sample_every=2)
  c.train.update(**train_overrides)
  c.sample.num = 8
  c.task.update(num=8, recon_steps=2, chunk=64)
  return c


def test_gaussian_prior_ablation_has_no_prior_params_or_loss():
  c = tiny_config('gaussian')
  dataset = images.random_images((8, 8, 1), 16)
  algo = LatentFlowAlgorithm(c, dataset)
  batch = dataset.batch(0, 8, 0)
  params, stats = jax.jit(algo.init_variables)(jax.random.key(0), batch)
  assert set(params) == set(algo.optimizers) == {'gen'}
  grads, _, m = jax.jit(algo.grads_fn)(params, stats, batch,
                                       jax.random.split(jax.random.key(1), 8),
                                       jnp.int32(0))
  assert set(grads) == {'gen'} and 'prior_loss' not in m
  z = jnp.ones((3, 4))
  np.testing.assert_allclose(lf.prior_log_prob(algo.model, {}, z),
                             -0.5 * 4 - 2 * math.log(2 * math.pi), rtol=1e-6)
  flow_algo = LatentFlowAlgorithm(tiny_config(), dataset)
  assert set(flow_algo.optimizers) == {'gen', 'prior'}


def test_bad_config_is_refused_by_name():
  dataset = images.random_images((8, 8, 1), 16)
  c = tiny_config()
  c.model.prior = 'vamp'
  with pytest.raises(ValueError, match='config.model.prior'):
    LatentFlowAlgorithm(c, dataset)
  with pytest.raises(ValueError, match="Unknown variant 'gausian'"):
    latent_flow_digits.get_config('gausian')
  c = tiny_config()
  c.model.gen_num_up = 4
  with pytest.raises(ValueError, match='gen_num_up'):
    LatentFlowAlgorithm(c, dataset).init_variables(jax.random.key(0), None)


def test_missing_pixels_are_nan_in_every_channel_and_test_split_is_clean():
  dataset = images.random_images((6, 6, 3), 400)
  bad = images.with_missing_pixels(dataset, 0.3)
  missing = np.isnan(bad.images)
  assert np.all(missing.any(-1) == missing.all(-1))
  assert abs(missing[..., 0].mean() - 0.3) < 0.02
  np.testing.assert_array_equal(bad.test_images, dataset.test_images)
  with pytest.raises(ValueError, match='missing_fraction'):
    images.with_missing_pixels(dataset, 1.0)


def _figures(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl'), encoding='utf-8') as f:
    return [json.loads(line) for line in f][-1]


def test_train_end_to_end_on_corrupted_digits_with_every_task(tmp_path):
  workdir = str(tmp_path / 'run')
  config = tiny_config('anomaly,corrupt')
  config.sample.tasks = ('reconstruct', 'inpaint', 'anomaly', 'recover')
  state = train.train_and_evaluate(config, workdir)
  assert int(state.step) == 2  # NaN pixels did not stop training
  figures = _figures(workdir)
  for name in ('recon_mse', 'masked_pixel_mse', 'anomaly_auroc',
               'mean_fill_mse'):
    assert np.isfinite(figures[name]), name
  assert abs(figures['missing_fraction'] - 0.3) < 0.05
  assert figures['known_pixels_changed'] == 0
  for name in ('step_2.png', 'step_2_inpaint.png', 'step_2_recover.npz'):
    assert os.path.exists(os.path.join(workdir, 'samples', name)), name
  clean = tiny_config('anomaly')
  dataset = images.random_images((8, 8, 1), 16)
  with pytest.raises(ValueError, match='missing_fraction'):
    LatentFlowAlgorithm(clean, dataset).tasks['recover'](state, dataset, 'x')
  with pytest.raises(ValueError, match='holdout_class'):
    LatentFlowAlgorithm(tiny_config(), dataset).tasks['anomaly'](
        state, dataset, 'x')
