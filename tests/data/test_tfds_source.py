"""coopjax.data.tfds_source: the tfds pipelines under tfds.testing.mock_data."""

import ml_collections
import numpy as np
import pytest

from coopjax import data

# Imports TensorFlow (several seconds) and runs the tfds pipelines.
pytestmark = pytest.mark.slow


def cfg(**kw):
  return ml_collections.ConfigDict(kw)


tfds = pytest.importorskip('tensorflow_datasets')


def test_tfds_cifar10_svhn_mnist_under_mock_data():
  with tfds.testing.mock_data(num_examples=12):
    ds = data.load(cfg(name='cifar10', image_size=32, num_test=5), 0)
    assert ds.images.shape == (12, 32, 32, 3) and ds.images.dtype == np.uint8
    assert ds.test_images.shape == (5, 32, 32, 3) and ds.flip
    assert ds.num_classes == 10 and ds.labels.dtype == np.int32
    b = ds.batch(0, 4, 0)
    assert b['x'].dtype == np.float32 and -1 <= b['x'].min() <= b['x'].max() <= 1
    assert not data.load(cfg(name='svhn_cropped', random_flip=False), 0).flip
    mnist = data.load(cfg(name='mnist', image_size=32), 0)
    assert mnist.example_shape == (32, 32, 1)
    assert np.all(mnist.images[:, :2] == 0)  # padded with black


def test_tfds_celeba_crop_resize_attributes_and_process_shards():
  with tfds.testing.mock_data(num_examples=8):
    ds = data.load(cfg(name='celeb_a', image_size=16,
                       attributes=('Male', 'Smiling', 'Young')), 0)
    assert ds.example_shape == (16, 16, 3)
    assert ds.labels.shape == (8, 3) and set(np.unique(ds.labels)) <= {0, 1}
    assert ds.attributes == ('Male', 'Smiling', 'Young')
    shard = data.load(cfg(name='cifar10'), 0, process_index=1,
                      process_count=2)
    assert shard.sharded  # (mock data ignores the split slice itself)
    assert shard.batch(3, 8, 0, 1, 2)['x'].shape == (4, 32, 32, 3)


def test_tfds_missing_data_says_what_to_download(tmp_path):
  with pytest.raises(FileNotFoundError, match='download_and_prepare'):
    data.load(cfg(name='svhn_cropped', tfds_dir=str(tmp_path)), 0)
