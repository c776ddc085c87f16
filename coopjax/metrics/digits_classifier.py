"""A small digits classifier and the Frechet distance in its feature space.

FID's Inception network means nothing on 8x8 grey digits, so the digits get
their own feature extractor: a two-conv CNN trained on the training split of
the embedded scikit-learn digits (``coopjax.data.images.load_digits``; the
fixed 297-image test split is held out), with a fixed seed and a fixed number
of Adam steps (seconds on a CPU). Its 64-d penultimate activations play the
role of Inception's pool3: ``digits_frechet`` is the Frechet distance between
the Gaussian fits of the features of some images and of the real training
digits. The weights, the reference statistics and the test accuracy are
cached in ``cache_dir`` (``CACHE_NAME``) on first use.

Images are compared at 8x8: 16x16 inputs are cropped back (``resize='pad'``,
the digits loader's default) or resized bilinearly (``resize='resize'``).
"""

from __future__ import annotations

import functools
import os
from typing import Dict

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn

from coopjax.data.images import load_digits, to_float
from coopjax.metrics import frechet

SIZE = 8
FEATURES = 64
SEED = 0
STEPS = 400
BATCH = 128
LR = 2e-3
# Bump when the architecture or the recipe changes: old caches are ignored.
CACHE_NAME = f'digits_classifier_v1_s{SEED}_n{STEPS}.npz'


def patch_index(size: int, stride: int) -> np.ndarray:
  """``[out^2, 9]`` flat indices of each 3x3 window in the 1-padded image."""
  starts = np.arange(0, size, stride)
  rows = starts[:, None, None, None] + np.arange(3)[None, None, :, None]
  cols = starts[None, :, None, None] + np.arange(3)[None, None, None, :]
  return (rows * (size + 2) + cols).reshape(len(starts) ** 2, 9)


class Conv3x3(nn.Module):
  """A 3x3 'SAME' convolution as a gather of windows and one matmul.

  Equal to ``nn.Conv(features, (3, 3), strides, padding='SAME')`` (for even
  sizes); XLA's CPU convolution gradients are ~30x slower at these sizes, and
  this keeps training to seconds.
  """
  features: int
  strides: int = 1

  @nn.compact
  def __call__(self, x):
    b, h, w, c = x.shape
    idx = patch_index(h, self.strides)
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))).reshape(b, -1, c)
    y = nn.Dense(self.features)(xp[:, idx].reshape(b, len(idx), 9 * c))
    side = -(-h // self.strides)
    return y.reshape(b, side, side, self.features)


class DigitsCNN(nn.Module):
  """``[B, 8, 8, 1]`` -> (``[B, 64]`` penultimate features, ``[B, 10]`` logits)."""

  @nn.compact
  def __call__(self, x):
    x = nn.relu(Conv3x3(32)(x))
    x = nn.relu(Conv3x3(64, strides=2)(x))
    h = nn.relu(nn.Dense(FEATURES)(x.reshape(x.shape[0], -1)))
    return h, nn.Dense(10)(h)


def to_classifier_size(images: np.ndarray, resize: str = 'pad') -> np.ndarray:
  """``[N, H, W, 1]`` digits (float in [-1, 1] or uint8) -> ``[N, 8, 8, 1]``.

  Args:
    images: the images; ``H == W``; ``H == 8`` passes through.
    resize: how larger digits were made: 'pad' (centre-crop back to 8x8) or
      'resize' (bilinear resize to 8x8).

  Raises:
    ValueError: not square grey images, or a size 'pad' cannot undo.
  """
  x = to_float(np.asarray(images))
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4 or x.shape[1] != x.shape[2] or x.shape[3] != 1:
    raise ValueError(f'digits images must be [N, H, H, 1], got shape '
                     f'{x.shape}')
  h = x.shape[1]
  if h == SIZE:
    return x
  if resize == 'pad':
    if h < SIZE or (h - SIZE) % 2:
      raise ValueError(f"resize='pad' cannot crop {h}x{h} digits to "
                       f"{SIZE}x{SIZE}; pass resize='resize'.")
    p = (h - SIZE) // 2
    return x[:, p:p + SIZE, p:p + SIZE]
  if resize == 'resize':
    return np.asarray(jax.image.resize(x, (len(x), SIZE, SIZE, 1),
                                       'bilinear'))
  raise ValueError(f"resize={resize!r}; expected 'pad' or 'resize'.")


@jax.jit
def _apply(params, x):
  return DigitsCNN().apply({'params': params}, x)


def train_classifier(seed: int = SEED, steps: int = STEPS):
  """Trains the CNN on the digits training split; deterministic.

  Args:
    seed: initialisation and batch-order seed.
    steps: Adam steps of ``BATCH`` images.

  Returns:
    ``(params, test_accuracy)`` (accuracy on the fixed 297-image test split).
  """
  data = load_digits({'image_size': SIZE})
  x, y = jnp.asarray(data.images), jnp.asarray(data.labels)
  order = np.stack([np.random.default_rng([seed, s]).choice(
      len(x), BATCH, replace=False) for s in range(steps)])
  params = DigitsCNN().init(jax.random.key(seed), x[:1])['params']
  opt = optax.adam(LR)

  def loss_fn(p, idx):
    logits = DigitsCNN().apply({'params': p}, x[idx])[1]
    return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                           y[idx]).mean()

  def step(carry, idx):
    p, s = carry
    grads = jax.grad(loss_fn)(p, idx)
    updates, s = opt.update(grads, s, p)
    return (optax.apply_updates(p, updates), s), None

  train = jax.jit(lambda p: jax.lax.scan(step, (p, opt.init(p)),
                                         jnp.asarray(order))[0][0])
  params = train(params)
  logits = _apply(params, jnp.asarray(data.test_images))[1]
  accuracy = float(np.mean(np.argmax(np.asarray(logits), -1)
                           == data.test_labels))
  return params, accuracy


def features(params, images: np.ndarray, resize: str = 'pad') -> np.ndarray:
  """``[N, 64]`` penultimate features of digits (see ``to_classifier_size``)."""
  x = to_classifier_size(images, resize)
  return np.concatenate([np.asarray(_apply(params, x[i:i + 1000])[0])
                         for i in range(0, len(x), 1000)])


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime: float) -> Dict[str, object]:
  del mtime  # part of the lru key only: a rewritten file is read again
  with np.load(path) as f:
    flat = {k[len('params/'):]: f[k] for k in f.files
            if k.startswith('params/')}
    return {'params': flax.traverse_util.unflatten_dict(flat, sep='/'),
            'mu': f['mu'], 'sigma': f['sigma'],
            'test_accuracy': float(f['test_accuracy'])}


def load_or_train(cache_dir: str) -> Dict[str, object]:
  """The classifier and the real digits' feature statistics, cached.

  Args:
    cache_dir: directory holding ``CACHE_NAME``; trained and written there
      (atomically) when missing.

  Returns:
    ``{'params', 'mu', 'sigma', 'test_accuracy'}`` where ``mu, sigma`` are the
    Gaussian statistics of the training digits' features.
  """
  path = os.path.join(cache_dir, CACHE_NAME)
  if not os.path.isfile(path):
    params, accuracy = train_classifier()
    mu, sigma = frechet.gaussian_stats(
        features(params, load_digits({'image_size': SIZE}).images))
    flat = flax.traverse_util.flatten_dict(params, sep='/')
    os.makedirs(cache_dir, exist_ok=True)
    tmp = path + '.tmp.npz'
    np.savez(tmp, mu=mu, sigma=sigma, test_accuracy=accuracy,
             **{'params/' + k: np.asarray(v) for k, v in flat.items()})
    os.replace(tmp, path)
  return _load_cached(path, os.path.getmtime(path))


@functools.lru_cache(maxsize=4)
def _resized_reference(path: str, mtime: float, size: int):
  """Statistics of the training digits made ``size`` by 'resize' and back."""
  real = load_digits({'image_size': size, 'resize': 'resize'}).images
  return frechet.gaussian_stats(
      features(_load_cached(path, mtime)['params'], real, 'resize'))


def digits_frechet(images: np.ndarray, cache_dir: str,
                   resize: str = 'pad') -> float:
  """Frechet distance of digits images to the real training digits.

  With ``resize='resize'`` and images larger than 8x8, the real digits go
  through the same round trip (up to the images' size, and back), so that
  the blur of the resizing is not counted as a difference.

  Args:
    images: ``[N, H, H, 1]`` in [-1, 1], ``N >= 2`` (8x8, or larger ones
      made by ``resize`` as the digits loader does).
    cache_dir: where the classifier is cached (trained on first use).
    resize: 'pad' or 'resize' (see ``to_classifier_size``).

  Returns:
    The squared Frechet distance between the Gaussian fits of the
    classifier's penultimate features (``frechet.frechet_distance``).
  """
  model = load_or_train(cache_dir)
  mu, sigma = frechet.gaussian_stats(features(model['params'], images, resize))
  size = np.shape(images)[1]
  if resize == 'resize' and size != SIZE:
    path = os.path.join(cache_dir, CACHE_NAME)
    ref = _resized_reference(path, os.path.getmtime(path), size)
  else:
    ref = model['mu'], model['sigma']
  return frechet.frechet_distance(mu, sigma, *ref)
