"""The latent flow algorithm: the Gaussian-prior ablation, bad configs, and
the tasks' refusals (training end to end on corrupted digits with every task
runs through the CLI: tests/test_cli_modes.py)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import latent_flow as lf
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


def test_recover_and_anomaly_need_their_training_set_up():
  state = None  # refused before the state is read
  clean = tiny_config('anomaly')
  dataset = images.random_images((8, 8, 1), 16)
  with pytest.raises(ValueError, match='missing_fraction'):
    LatentFlowAlgorithm(clean, dataset).tasks['recover'](state, dataset, 'x')
  with pytest.raises(ValueError, match='holdout_class'):
    LatentFlowAlgorithm(tiny_config(), dataset).tasks['anomaly'](
        state, dataset, 'x')
