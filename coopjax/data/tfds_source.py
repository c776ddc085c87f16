"""Reads a TensorFlow Datasets split into host memory, offline.

The data must already be prepared under ``config.data.tfds_dir`` (nothing is
downloaded during training: pods and clusters usually have no internet, and a
half-downloaded dataset is worse than a clear error). Each JAX process reads
only its own shard of the training split (``tfds.split_for_jax_process``).

Preprocessing: CelebA is centre-cropped to 140x140 and resized (area
filter); MNIST-like 28x28 images are padded with black to 32x32 when
``data.image_size == 32``; other sets are resized only if their size differs
from ``data.image_size``. Images stay uint8; batches scale them to [-1, 1].
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from coopjax.data.images import CELEBA_CROP, TFDS, ImageDataset

TEST_SPLITS = {'downsampled_imagenet/32x32': 'validation',
               'imagenet_resized/32x32': 'validation'}


def missing_data_message(name: str, data_dir: str) -> str:
  return (
      f"TensorFlow Datasets '{name}' is not prepared in data.tfds_dir="
      f"{data_dir!r} (coopjax never downloads during a run). On a machine with "
      f"internet run:\n  python -c \"import tensorflow_datasets as tfds; "
      f"tfds.builder('{name}', data_dir='{data_dir or '~/tensorflow_datasets'}')"
      f".download_and_prepare()\"\nthen copy that directory here (or to a "
      f"bucket) and pass --config.data.tfds_dir=<it>.")


def _preprocess(name: str, size: int, attributes: Tuple[str, ...]):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  label_key = TFDS[name][0]

  def fn(example):
    image = example['image']
    if name == 'celeb_a':
      h, w = tf.shape(image)[0], tf.shape(image)[1]
      top, left = (h - CELEBA_CROP) // 2, (w - CELEBA_CROP) // 2
      image = image[top:top + CELEBA_CROP, left:left + CELEBA_CROP]
    if image.shape[0] == 28 and size == 32:
      image = tf.pad(image, [[2, 2], [2, 2], [0, 0]])
    elif image.shape[0] != size:
      image = tf.image.resize(image, (size, size), method='area',
                              antialias=True)
      image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    out = {'image': image}
    if attributes:
      out['label'] = tf.stack([tf.cast(example['attributes'][a], tf.int32)
                               for a in attributes])
    elif label_key:
      out['label'] = tf.cast(example[label_key], tf.int32)
    return out

  return fn


def _read(name: str, split: str, data_dir: Optional[str], size: int,
          attributes: Tuple[str, ...], limit: Optional[int] = None):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    ds = tfds.load(name, split=split, data_dir=data_dir or None,
                   download=False, shuffle_files=False)
  except (AssertionError, FileNotFoundError, tfds.core.DatasetNotFoundError
          ) as e:
    raise FileNotFoundError(missing_data_message(name, data_dir)) from e
  if limit:
    ds = ds.take(limit)
  ds = ds.map(_preprocess(name, size, attributes)).batch(1024)
  images, labels = [], []
  for b in tfds.as_numpy(ds):
    images.append(b['image'])
    if 'label' in b:
      labels.append(b['label'])
  if not images:
    raise ValueError(f"tfds '{name}' split {split!r} is empty.")
  return (np.concatenate(images),
          np.concatenate(labels).astype(np.int32) if labels else None)


def load(cfg, process_index: int = 0, process_count: int = 1) -> ImageDataset:
  """The tfds image set ``cfg.name`` (see the module docstring)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], 'GPU')  # keep TF off the accelerators
  name, size = cfg.name, int(cfg.image_size)
  attributes = tuple(cfg.attributes or ())
  if attributes and name != 'celeb_a':
    raise ValueError(f'data.attributes is only for celeb_a, not {name!r}.')
  train_split = cfg.split
  if process_count > 1:
    train_split = tfds.split_for_jax_process(train_split,
                                             process_index=process_index,
                                             process_count=process_count)
  data_dir = cfg.tfds_dir or None
  x, y = _read(name, train_split, data_dir, size, attributes)
  test_split = cfg.test_split or TEST_SPLITS.get(name, 'test')
  x_te, y_te = _read(name, test_split, data_dir, size, attributes,
                     int(cfg.num_test))
  num_classes = len(attributes) if attributes else TFDS[name][1]
  return ImageDataset(name, x, y, num_classes, x_te, y_te,
                      flip=bool(cfg.random_flip),
                      sharded=process_count > 1,
                      attributes=attributes or None)
