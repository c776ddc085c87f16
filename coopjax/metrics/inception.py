"""Inception-v3 as used for FID and the Inception Score, in Flax Linen.

The network is pytorch-fid's "FID Inception" (``fid_inception_v3``), a port of
TensorFlow's 2015-12-05 Inception graph that the original FID and Inception
Score code use: torchvision's Inception-v3 with 1008 classes, average pools
that do not count padding (``FIDInceptionA/C/E_1``) and a max pool in the last
block's pool branch (``FIDInceptionE_2``). Images in [-1, 1] (grey ones are
repeated over three channels) are resized bilinearly to 299x299
(half-pixel centres, no antialiasing: ``F.interpolate(align_corners=False)``);
the outputs are the 2048-d ``pool3`` features (FID) and the 1008 logits
``pool3 @ W`` of the softmax layer without its bias, as in the original
Inception Score code (``logits_bias=True`` adds it).

Submodules carry pytorch-fid's names (``Mixed_6b/branch7x7_2/conv``), so the
weights file made by ``tools/convert_inception.py`` is the flattened variable
tree: keys ``params/<path>/kernel`` etc. and ``batch_stats/<path>/bn/mean``.
"""

from __future__ import annotations

import functools
import os
from typing import Callable, Dict, Optional, Sequence, Tuple

import flax
import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from coopjax.data.images import to_float

SIZE = 299
NUM_FEATURES = 2048
NUM_LOGITS = 1008
HOWTO = ('Download pt_inception-2015-12-05-6726825d.pth (the pytorch-fid '
         'weights) on a machine with internet access and convert it once with '
         '"python tools/convert_inception.py pt_inception-2015-12-05-'
         '6726825d.pth inception_fid.npz" (needs torch there); then set '
         'config.eval.inception_path to the .npz. See docs/fid.md.')


class BasicConv(nn.Module):
  """Conv without bias, inference BatchNorm (eps 1e-3), ReLU."""
  features: int
  kernel: Tuple[int, int]
  strides: int = 1
  padding: Tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    ph, pw = self.padding
    x = nn.Conv(self.features, self.kernel, (self.strides,) * 2,
                padding=((ph, ph), (pw, pw)), use_bias=False, name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name='bn')(x)
    return nn.relu(x)


def _conv(name, features, kernel, strides=1, padding=0):
  """``BasicConv`` from torch-style arguments (ints or (h, w) pairs)."""
  pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)
  return BasicConv(features, pair(kernel), strides, pair(padding), name=name)


def _avg_pool(x):
  return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)),
                     count_include_pad=False)


def _max_pool(x, strides=2, padding=0):
  return nn.max_pool(x, (3, 3), (strides, strides),
                     ((padding, padding), (padding, padding)))


class InceptionA(nn.Module):
  """35x35 block (``Mixed_5b..5d``)."""
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = _conv('branch1x1', 64, 1)(x)
    b5 = _conv('branch5x5_2', 64, 5, padding=2)(_conv('branch5x5_1', 48, 1)(x))
    b3 = _conv('branch3x3dbl_1', 64, 1)(x)
    b3 = _conv('branch3x3dbl_2', 96, 3, padding=1)(b3)
    b3 = _conv('branch3x3dbl_3', 96, 3, padding=1)(b3)
    bp = _conv('branch_pool', self.pool_features, 1)(_avg_pool(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """Reduction 35 -> 17 (``Mixed_6a``)."""

  @nn.compact
  def __call__(self, x):
    b3 = _conv('branch3x3', 384, 3, strides=2)(x)
    bd = _conv('branch3x3dbl_1', 64, 1)(x)
    bd = _conv('branch3x3dbl_2', 96, 3, padding=1)(bd)
    bd = _conv('branch3x3dbl_3', 96, 3, strides=2)(bd)
    return jnp.concatenate([b3, bd, _max_pool(x)], axis=-1)


class InceptionC(nn.Module):
  """17x17 block with factorised 7x7 convs (``Mixed_6b..6e``)."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c = self.channels_7x7
    b1 = _conv('branch1x1', 192, 1)(x)
    b7 = _conv('branch7x7_1', c, 1)(x)
    b7 = _conv('branch7x7_2', c, (1, 7), padding=(0, 3))(b7)
    b7 = _conv('branch7x7_3', 192, (7, 1), padding=(3, 0))(b7)
    bd = _conv('branch7x7dbl_1', c, 1)(x)
    for i, (out, k, p) in enumerate([(c, (7, 1), (3, 0)), (c, (1, 7), (0, 3)),
                                     (c, (7, 1), (3, 0)),
                                     (192, (1, 7), (0, 3))]):
      bd = _conv(f'branch7x7dbl_{i + 2}', out, k, padding=p)(bd)
    bp = _conv('branch_pool', 192, 1)(_avg_pool(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """Reduction 17 -> 8 (``Mixed_7a``)."""

  @nn.compact
  def __call__(self, x):
    b3 = _conv('branch3x3_2', 320, 3, strides=2)(_conv('branch3x3_1', 192, 1)(x))
    b7 = _conv('branch7x7x3_1', 192, 1)(x)
    b7 = _conv('branch7x7x3_2', 192, (1, 7), padding=(0, 3))(b7)
    b7 = _conv('branch7x7x3_3', 192, (7, 1), padding=(3, 0))(b7)
    b7 = _conv('branch7x7x3_4', 192, 3, strides=2)(b7)
    return jnp.concatenate([b3, b7, _max_pool(x)], axis=-1)


class InceptionE(nn.Module):
  """8x8 block (``Mixed_7b``: average pool; ``Mixed_7c``: max pool)."""
  max_pool_branch: bool = False

  def _split(self, x, prefix):
    a = _conv(prefix + 'a', 384, (1, 3), padding=(0, 1))(x)
    b = _conv(prefix + 'b', 384, (3, 1), padding=(1, 0))(x)
    return jnp.concatenate([a, b], axis=-1)

  @nn.compact
  def __call__(self, x):
    b1 = _conv('branch1x1', 320, 1)(x)
    b3 = self._split(_conv('branch3x3_1', 384, 1)(x), 'branch3x3_2')
    bd = _conv('branch3x3dbl_1', 448, 1)(x)
    bd = _conv('branch3x3dbl_2', 384, 3, padding=1)(bd)
    bd = self._split(bd, 'branch3x3dbl_3')
    pooled = _max_pool(x, 1, 1) if self.max_pool_branch else _avg_pool(x)
    bp = _conv('branch_pool', 192, 1)(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class Head(nn.Module):
  """The 2048 -> 1008 softmax layer (``fc``); bias added only if asked."""
  use_bias: bool = False

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (x.shape[-1], NUM_LOGITS))
    bias = self.param('bias', nn.initializers.zeros, (NUM_LOGITS,))
    y = x @ kernel
    return y + bias if self.use_bias else y


class InceptionV3(nn.Module):
  """FID Inception-v3: ``[B, H, W, C]`` in [-1, 1] -> (pool3, logits)."""
  logits_bias: bool = False

  @nn.compact
  def __call__(self, images):
    x = jnp.asarray(images, jnp.float32)
    if x.shape[-1] == 1:
      x = jnp.repeat(x, 3, axis=-1)
    if x.shape[-1] != 3:
      raise ValueError(f'Inception needs 1 or 3 channels, got shape {x.shape}')
    x = jax.image.resize(x, (x.shape[0], SIZE, SIZE, 3), 'bilinear',
                         antialias=False)
    x = _conv('Conv2d_1a_3x3', 32, 3, strides=2)(x)
    x = _conv('Conv2d_2a_3x3', 32, 3)(x)
    x = _max_pool(_conv('Conv2d_2b_3x3', 64, 3, padding=1)(x))
    x = _conv('Conv2d_3b_1x1', 80, 1)(x)
    x = _max_pool(_conv('Conv2d_4a_3x3', 192, 3)(x))
    for name, pool_features in (('5b', 32), ('5c', 64), ('5d', 64)):
      x = InceptionA(pool_features, name='Mixed_' + name)(x)
    x = InceptionB(name='Mixed_6a')(x)
    for name, c7 in (('6b', 128), ('6c', 160), ('6d', 160), ('6e', 192)):
      x = InceptionC(c7, name='Mixed_' + name)(x)
    x = InceptionD(name='Mixed_7a')(x)
    x = InceptionE(False, name='Mixed_7b')(x)
    x = InceptionE(True, name='Mixed_7c')(x)
    pool = jnp.mean(x, axis=(1, 2))
    return pool, Head(self.logits_bias, name='fc')(pool)


# ----------------------------------------------------------------- weights


def flatten(variables) -> Dict[str, np.ndarray]:
  """``{'params': {...}, 'batch_stats': {...}}`` -> ``{'a/b/c': array}``."""
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables),
                                         sep='/')
  return {k: np.asarray(v) for k, v in flat.items()}


@functools.lru_cache(maxsize=1)
def expected_shapes() -> Dict[str, Tuple[int, ...]]:
  """Flattened variable name -> shape of :class:`InceptionV3` (traced only)."""
  shapes = jax.eval_shape(InceptionV3().init, jax.random.key(0),
                          jnp.zeros((1, SIZE, SIZE, 3)))
  return {k: tuple(v.shape) for k, v in
          flax.traverse_util.flatten_dict(shapes, sep='/').items()}


def check_weights(flat: Dict[str, np.ndarray], path: str = '<arrays>') -> None:
  """Raises a ValueError naming missing, unexpected and mis-shaped keys."""
  want = expected_shapes()
  missing = sorted(set(want) - set(flat))
  extra = sorted(set(flat) - set(want))
  wrong = sorted(f'{k}: {tuple(flat[k].shape)} (expected {want[k]})'
                 for k in set(want) & set(flat)
                 if tuple(flat[k].shape) != want[k])
  if missing or extra or wrong:
    show = lambda items: ', '.join(items[:5]) + (
        f' ... ({len(items)} in all)' if len(items) > 5 else '')
    parts = [f'{label}: {show(items)}' for label, items in
             (('missing', missing), ('unexpected', extra),
              ('wrong shape', wrong)) if items]
    raise ValueError(f'{path!r} is not a converted FID Inception weights file '
                     f'({"; ".join(parts)}). {HOWTO}')


def load_weights(path: str):
  """The Inception variables from a converted ``.npz``, checked.

  Args:
    path: the ``.npz`` written by ``tools/convert_inception.py``
      (``config.eval.inception_path``).

  Returns:
    ``{'params': ..., 'batch_stats': ...}`` of float32 arrays.

  Raises:
    FileNotFoundError: no such file (the message says how to make one).
    ValueError: keys or shapes differ from :class:`InceptionV3`'s.
  """
  if not path or not os.path.isfile(path):
    raise FileNotFoundError(
        f'Inception weights {path!r} (config.eval.inception_path) not found. '
        + HOWTO)
  with np.load(path, allow_pickle=False) as f:
    flat = {k: np.asarray(f[k], np.float32) for k in f.files}
  check_weights(flat, path)
  return flax.traverse_util.unflatten_dict(flat, sep='/')


def random_weights(seed: int = 0):
  """Random variables of the right shapes (tests; no compute, no download)."""
  rng = np.random.default_rng(seed)
  flat = {}
  for name, shape in expected_shapes().items():
    if name.endswith('/var'):
      flat[name] = np.ones(shape, np.float32)
    elif name.endswith(('/mean', '/bias')):
      flat[name] = np.zeros(shape, np.float32)
    elif name.endswith('/scale'):
      flat[name] = np.ones(shape, np.float32)
    else:  # He-scaled kernels keep activations O(1) through the ReLUs
      fan_in = int(np.prod(shape[:-1]))
      flat[name] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
                    ).astype(np.float32)
  return flax.traverse_util.unflatten_dict(flat, sep='/')


# -------------------------------------------------------------- extraction


@functools.lru_cache(maxsize=2)
def _apply_fn(logits_bias: bool) -> Callable:
  return jax.jit(InceptionV3(logits_bias).apply)


def batch_sharding(devices: Sequence[jax.Device]) -> NamedSharding:
  """Splits the leading (image) axis over ``devices``."""
  return NamedSharding(Mesh(np.asarray(list(devices)), ('data',)), P('data'))


def inception_outputs(images: np.ndarray, variables, batch_size: int = 100,
                      log: Optional[Callable[[str], None]] = None,
                      logits_bias: bool = False,
                      devices: Optional[Sequence[jax.Device]] = None
                      ) -> Tuple[np.ndarray, np.ndarray]:
  """``(pool3 [N, 2048], logits [N, 1008])`` of images, in fixed-size batches.

  Each batch is split over ``devices`` (default: this process's devices):
  every device computes the features of its share only.

  Args:
    images: ``[N, H, W, C]`` uint8 0..255 or float in [-1, 1], C in {1, 3}.
    variables: from :func:`load_weights`.
    batch_size: images per jitted call, rounded up to a multiple of the
      device count (the last batch is padded, so one compilation serves
      every batch).
    log: progress printer (e.g. :func:`coopjax.console.log`), called every ~10%.
    logits_bias: add the softmax bias to the logits.
    devices: the devices sharing each batch.

  Returns:
    float32 numpy arrays.
  """
  n = len(images)
  if n == 0:
    raise ValueError('inception_outputs got no images')
  apply = _apply_fn(bool(logits_bias))
  devices = jax.local_devices() if devices is None else list(devices)
  sharding = batch_sharding(devices)
  batch_size = -(-min(batch_size, n) // len(devices)) * len(devices)
  pools, logits = [], []
  every = max(1, (n // batch_size) // 10)
  for i, start in enumerate(range(0, n, batch_size)):
    x = to_float(np.asarray(images[start:start + batch_size]))
    real = len(x)
    if real < batch_size:
      x = np.concatenate([x, np.zeros((batch_size - real,) + x.shape[1:],
                                      x.dtype)])
    p, l = apply(variables, jax.device_put(x, sharding))
    pools.append(np.asarray(p)[:real])
    logits.append(np.asarray(l)[:real])
    if log is not None and (i + 1) % every == 0:
      log(f'inception features: {min(start + batch_size, n)}/{n}')
  return np.concatenate(pools), np.concatenate(logits)


def inception_score(logits: np.ndarray, splits: int = 10
                    ) -> Tuple[float, float]:
  """Inception Score ``exp(E_x KL(p(y|x) || p(y)))``, mean and std over splits.

  As in the original code (Salimans et al. 2016): the samples are cut into
  ``splits`` consecutive parts, ``p(y)`` is each part's mean softmax.

  Args:
    logits: ``[N, K]`` class logits (softmax applied here).
    splits: number of parts, ``1 <= splits <= N``.

  Returns:
    ``(mean, std)`` of the per-part scores; in ``[1, K]``.

  Raises:
    ValueError: bad shape or ``splits``.
  """
  logits = np.asarray(logits, np.float64)
  if logits.ndim != 2 or not 1 <= splits <= len(logits):
    raise ValueError(f'inception_score needs [N, K] logits and 1 <= splits <= '
                     f'N, got shape {logits.shape} and splits={splits}')
  logp = logits - logits.max(axis=1, keepdims=True)
  logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
  scores = []
  for part in np.array_split(logp, splits):
    log_py = np.log(np.exp(part).mean(axis=0))
    kl = np.sum(np.exp(part) * (part - log_py), axis=1)
    scores.append(np.exp(kl.mean()))
  return float(np.mean(scores)), float(np.std(scores))
