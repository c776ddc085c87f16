"""The FID protocol options: clamping, uint8 quantisation, reference split.

Inception itself is replaced by a cheap feature map (the pixels), so that
what these tests check is what reaches the features; the network is tested
in test_inception.py and test_fid.py.
"""

import dataclasses

import ml_collections
import numpy as np
import pytest

from coopjax.config import common
from coopjax.data import images as image_data
from coopjax.metrics import fid, inception
from coopjax.trainer import reports


@pytest.fixture
def pixel_features(monkeypatch, tmp_path):
  """FID on raw pixels: ``inception_outputs`` returns the images flattened."""
  seen = []

  def outputs(images, variables, batch_size=100, log=None):
    del variables, batch_size, log
    images = image_data.to_float(np.asarray(images))  # as Inception does
    seen.append(images)
    flat = np.asarray(images, np.float64).reshape(len(images), -1)
    return flat, flat
  monkeypatch.setattr(inception, 'load_weights', lambda path: None)
  monkeypatch.setattr(inception, 'inception_outputs', outputs)
  weights = tmp_path / 'weights.npz'
  weights.write_bytes(b'not really weights')
  return str(weights), seen


def _fid(samples, data, weights, cache, **kw):
  return fid.fid_and_is(samples, data, weights, cache, num_real=64,
                        splits=2, log=lambda _: None, **kw)['fid']


def test_clamping_changes_the_statistics_only_beyond_the_range(
    pixel_features, tmp_path):
  weights, seen = pixel_features
  data = image_data.random_images((2, 2, 1), num=64, seed=0)
  rng = np.random.default_rng(1)
  inside = rng.uniform(-1, 1, (64, 2, 2, 1)).astype(np.float32)
  cache = str(tmp_path / 'cache')
  assert _fid(inside, data, weights, cache) == _fid(
      inside, data, weights, cache, clamp=False)
  beyond = 1.5 * inside
  clamped = _fid(beyond, data, weights, cache)
  assert clamped != pytest.approx(_fid(beyond, data, weights, cache,
                                       clamp=False), rel=1e-3)
  assert clamped == pytest.approx(_fid(np.clip(beyond, -1, 1), data, weights,
                                       cache, clamp=False), rel=1e-9)
  assert np.max(seen[-3]) <= 1.0 and np.max(seen[-2]) > 1.0


def test_quantisation_to_uint8_levels():
  x = np.array([-1.2, -1.0, 0.0, 0.004, 0.9999, 1.0, 1.3], np.float32)
  assert np.array_equal(fid.prepare_samples(x, clamp=False), x)
  np.testing.assert_array_equal(fid.prepare_samples(x),
                                np.clip(x, -1, 1))
  level = lambda y: np.round((y + 1) * 127.5).astype(int)
  # (x + 1) * 127.5 = 0, 0, 127.5, 128.01, 254.99, 255, 255 after clipping
  assert list(level(fid.prepare_samples(x, quantize='round'))) == [
      0, 0, 128, 128, 255, 255, 255]
  assert list(level(fid.prepare_samples(x, quantize='floor'))) == [
      0, 0, 127, 128, 254, 255, 255]
  with pytest.raises(ValueError, match='quantisation'):
    fid.prepare_samples(x, quantize='trunc')


def test_reference_statistics_from_the_chosen_split(pixel_features, tmp_path):
  weights, seen = pixel_features
  data = dataclasses.replace(image_data.random_images((2, 2, 1), num=64),
                             test_images=np.zeros((64, 2, 2, 1), np.uint8))
  samples = image_data.to_float(data.images)
  cache = str(tmp_path / 'cache')
  assert _fid(samples, data, weights, cache) == pytest.approx(0.0, abs=1e-6)
  assert _fid(samples, data, weights, cache, split='test') > 1.0
  assert np.all(seen[-2] == -1.0)  # the test split's (black) images


@pytest.mark.parametrize('field,value', [('fid_quantize', 'trunc'),
                                         ('fid_reference', 'val'),
                                         ('checkpoint', 'last')])
def test_bad_options_are_refused_before_any_work(field, value):
  config = ml_collections.ConfigDict({'eval': common.eval_(**{field: value})})
  with pytest.raises(ValueError, match=f'config.eval.{field}='):
    reports.check_eval_options(config)
  reports.check_eval_options(
      ml_collections.ConfigDict({'eval': common.eval_()}))
