"""coopjax.metrics.digits_classifier: accuracy, Frechet distance, cache reuse."""

import os

import ml_collections
import numpy as np
import pytest

from coopjax import metrics
from coopjax.trainer import reports
from coopjax.data import images as image_data
from coopjax.metrics import digits_classifier as dc


@pytest.fixture(scope='module')
def digits_cache(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('digits_cache'))
  dc.load_or_train(path)
  return path


@pytest.mark.slow
def test_digits_classifier_accuracy_and_frechet(digits_cache):
  model = dc.load_or_train(digits_cache)
  assert model['test_accuracy'] > 0.9
  held_out = image_data.load_digits({'image_size': 8}).test_images
  real = metrics.digits_frechet(held_out, digits_cache)
  noise = metrics.digits_frechet(
      np.random.default_rng(0).uniform(-1, 1, held_out.shape), digits_cache)
  assert real < 0.05 * noise, (real, noise)
  # 16x16 padded digits are cropped back: the same figure.
  padded = image_data.load_digits({'image_size': 16}).test_images
  assert metrics.digits_frechet(padded, digits_cache) == pytest.approx(real)


@pytest.mark.slow
def test_cached_digits_classifier_is_reused(digits_cache, monkeypatch):
  def no_training(*args, **kwargs):
    raise AssertionError('the classifier was trained again')
  monkeypatch.setattr(dc, 'train_classifier', no_training)
  first = dc.load_or_train(digits_cache)
  dc._load_cached.cache_clear()  # pylint: disable=protected-access
  again = dc.load_or_train(digits_cache)
  np.testing.assert_array_equal(again['mu'], first['mu'])
  cfg = ml_collections.ConfigDict(dict(
      data=dict(resize='pad'), eval=dict(cache_dir=digits_cache)))
  held_out = image_data.load_digits({'image_size': 8}).test_images
  out = reports.quality(cfg, image_data.load_digits({'image_size': 8}), held_out,
                        os.path.join(digits_cache, 'samples', 'x'))
  assert out == {'frechet_digits': pytest.approx(
      metrics.digits_frechet(held_out, digits_cache))}


def test_digits_input_checks():
  with pytest.raises(ValueError, match="resize='resize'"):
    dc.to_classifier_size(np.zeros((2, 11, 11, 1)))
  with pytest.raises(ValueError, match=r'\[N, H, H, 1\]'):
    dc.to_classifier_size(np.zeros((2, 8, 8, 3)))
