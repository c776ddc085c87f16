"""Data-parallel sampling: the sample axis split over 4 fake CPU devices.

Each algorithm's sampler draws sample ``i`` from the key and ``i`` alone, so
the sharded sampler must return what one device returns, each device must
hold only its share, and the samples must not depend on the chunk size.
"""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from coopjax import data, registry
from coopjax.trainer import parallel
from coopjax.trainer import state as ts
from coopjax.trainer.tasks import sample_in_chunks
from helpers import coopflow_models, latent_flow_models
from helpers import trainer as trainer_helpers


def _fresh(config):
  dataset = data.load(config.data, config.seed)
  algo = registry.build(config, dataset)
  params, stats = jax.jit(algo.init_variables)(
      jax.random.key(0), dataset.batch(0, 8, 0))
  return algo, ts.create(params, stats, algo.optimizers)


def _configs():
  return {'cdrl': trainer_helpers.tiny_config(),
          'coopflow': coopflow_models.tiny_config(),
          'latent_flow': latent_flow_models.tiny_config()}


@pytest.mark.slow
@pytest.mark.parametrize('name', ['cdrl', 'coopflow', 'latent_flow'])
def test_sharded_sampler_equals_one_device_and_shards_its_output(name):
  assert jax.device_count() == 4
  algo, state = _fresh(_configs()[name])
  key, num = jax.random.key(3), 8
  one = parallel.make_mesh(jax.devices()[:1])
  four = parallel.make_mesh()
  x1, aux1 = jax.jit(parallel.shard_sampler(algo.sampler, num, one))(
      parallel.put_replicated(state, one), key, 0)
  x4, aux4 = jax.jit(parallel.shard_sampler(algo.sampler, num, four))(
      parallel.put_replicated(state, four), key, 0)
  np.testing.assert_allclose(np.asarray(x4), np.asarray(x1), rtol=1e-5,
                             atol=1e-5)
  for k in aux1:
    np.testing.assert_allclose(np.asarray(aux4[k]), np.asarray(aux1[k]),
                               rtol=1e-5, atol=1e-5)
  # Each device holds only its quarter of the samples, in order.
  assert x4.sharding.spec == P(parallel.DATA)
  shards = sorted(x4.addressable_shards, key=lambda s: s.index[0].start)
  assert [s.data.shape[0] for s in shards] == [num // 4] * 4
  for i, s in enumerate(shards):
    np.testing.assert_allclose(np.asarray(s.data),
                               np.asarray(x1)[i * 2:(i + 1) * 2],
                               rtol=1e-5, atol=1e-5)
  # Different samples, not one sample repeated on every device.
  assert np.abs(np.asarray(x1)[:2] - np.asarray(x1)[2:4]).max() > 1e-3


@pytest.mark.parametrize('name', ['cdrl', 'coopflow', 'latent_flow'])
def test_samples_do_not_depend_on_the_chunk_size(name):
  algo, state = _fresh(_configs()[name])
  key = jax.random.key(5)
  whole = jax.jit(algo.sampler(6))
  in_twos = jax.jit(algo.sampler(2))
  a = sample_in_chunks(whole, state, key, 6, 6)
  b = sample_in_chunks(in_twos, state, key, 6, 2)
  np.testing.assert_allclose(a[0], b[0], rtol=1e-5, atol=1e-5)


def test_uneven_split_is_refused_with_the_fix():
  algo, _ = _fresh(_configs()['cdrl'])
  with pytest.raises(ValueError, match='multiple of 4'):
    parallel.shard_sampler(algo.sampler, 6, parallel.make_mesh())
  assert parallel.sample_chunk(10, 6, parallel.make_mesh()) == 8
