"""The latent flow algorithm: the Gaussian-prior ablation, bad configs, and
training end to end on corrupted digits with every task."""

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import data, metrics
from coopjax import latent_flow as lf
from coopjax.trainer import loop as train
from coopjax.latent_flow.algorithm import LatentFlowAlgorithm
from coopjax.data import images

from helpers.latent_flow_models import latent_flow_digits, tiny_config



@pytest.mark.slow
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


def _figures(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl'), encoding='utf-8') as f:
    return [json.loads(line) for line in f][-1]


@pytest.mark.slow
def test_train_end_to_end_on_corrupted_digits_with_every_task(tmp_path):
  workdir = str(tmp_path / 'run')
  config = tiny_config('anomaly,corrupt')
  config.sample.tasks = ('reconstruct', 'inpaint', 'anomaly', 'recover')
  state = train.train_and_evaluate(config, workdir)
  assert int(state.step) == 2  # NaN pixels did not stop training
  figures = _figures(workdir)
  for name in ('step_2.png', 'step_2_inpaint.png', 'step_2_recover.npz'):
    assert os.path.exists(os.path.join(workdir, 'samples', name)), name
  # The figures logged are those of the files written (the last task,
  # recover, logs the fill figures).
  out = lambda task: np.load(os.path.join(workdir, 'samples',
                                          f'step_2_{task}.npz'))
  rec = out('reconstruct')
  np.testing.assert_allclose(figures['recon_mse'],
                             np.mean((rec['x_hat'] - rec['x']) ** 2), rtol=1e-5)
  ano = out('anomaly')
  np.testing.assert_allclose(figures['anomaly_auroc'], metrics.auroc(
      ano['score'][ano['anomalous']], ano['score'][~ano['anomalous']]))
  rcv = out('recover')
  x, filled, mask = rcv['x'], rcv['filled'], rcv['mask']
  np.testing.assert_allclose(figures['missing_fraction'], 1 - mask.mean())
  assert abs(figures['missing_fraction'] - 0.3) < 0.05
  np.testing.assert_allclose(figures['masked_pixel_mse'],
                             np.mean((filled - x)[~mask] ** 2), rtol=1e-5)
  train_mean = np.nanmean(images.to_float(data.load(
      config.data, config.seed).images), axis=0)
  np.testing.assert_allclose(
      figures['mean_fill_mse'],
      np.mean((np.broadcast_to(train_mean, x.shape) - x)[~mask] ** 2),
      rtol=1e-5)
  clean = tiny_config('anomaly')
  dataset = images.random_images((8, 8, 1), 16)
  with pytest.raises(ValueError, match='missing_fraction'):
    LatentFlowAlgorithm(clean, dataset).tasks['recover'](state, dataset, 'x')
  with pytest.raises(ValueError, match='holdout_class'):
    LatentFlowAlgorithm(tiny_config(), dataset).tasks['anomaly'](
        state, dataset, 'x')
