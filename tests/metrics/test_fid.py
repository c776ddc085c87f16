"""coopjax.metrics.fid: FID and IS of images, cached reference statistics."""

import os

import numpy as np
import pytest

from coopjax import metrics
from coopjax.data import images as image_data
from coopjax.metrics import fid, inception

# Over ~5 s each on 2 CPU cores (compiling); deselected by -m "not slow".
pytestmark = pytest.mark.slow


def test_fid_of_the_real_images_is_zero_and_stats_are_cached(
    weights_file, tmp_path):
  data = image_data.random_images((8, 8, 1), num=2, seed=1, name='tiny/set')
  samples = image_data.to_float(data.images)
  out = fid.fid_and_is(samples, data, weights_file, str(tmp_path),
                       num_real=2, batch_size=2, log=lambda _: None)
  assert set(out) == {'fid', 'inception_score', 'inception_score_std'}
  files = os.listdir(tmp_path)
  assert files == [f'fid_stats_tiny-set_train_8x8x1_n2_'
                   f'{fid.weights_hash(weights_file)}.npz'], files
  # Read back from the cache (no variables: recomputing would fail).
  mu, sigma = fid.reference_stats(data, None, fid.weights_hash(weights_file),
                                  str(tmp_path), num=2)
  pool, logits = inception.inception_outputs(samples, inception.load_weights(
      weights_file), batch_size=2)
  np.testing.assert_allclose(mu, pool.mean(axis=0), rtol=1e-5, atol=1e-6)
  assert np.trace(sigma) > 0
  assert out['fid'] == pytest.approx(0.0, abs=1e-6 * np.trace(sigma))
  assert out['inception_score'] == pytest.approx(
      metrics.inception_score(logits, splits=2)[0], rel=1e-5)
