"""2-D toy densities: samplers, their true bin probabilities, and batching.

Every density is parameterised by ``scale`` (default 4.0, the reference value)
and has its own plotting / metric square ``[-box, box]^2`` split into
``bins x bins`` histogram bins:

- ``checkerboard``: the 8 unit squares of the reference CDRL toy, times s;
  uniform over their union. box 2.125 s (8.5), 34 bins (width 0.5 at s = 4,
  so every square edge lies on a bin edge).
- ``8gaussians``: equal mixture of N(mu_k, (s/8)^2 I), mu_k = s (cos, sin)
  (2 pi k / 8); std 0.5 at s = 4. box 1.625 s (6.5, i.e. 5 std beyond the
  outermost centre), 26 bins (width 1 std).
- ``2spirals``: FFJORD's two spirals (arm angle sqrt(u) 3 pi, uniform [0, 0.5)
  jitter, divided by 3, N(0, 0.1^2) noise), times s/4, so identical to FFJORD
  at s = 4. box s (4.0, > 6 noise std beyond the arms), 32 bins.
- ``rings``: 4 equally weighted circles of radius k s/4 (k = 1..4) plus
  N(0, (s/40)^2 I) noise (std 0.1 at s = 4). box 1.125 s (4.5, 5 std beyond
  the outer ring), 36 bins.
- ``array``: user points from ``data.path`` (see ``arrays.py``); box
  ``arrays.covering_box`` (about 1.1 max |x|), 34 bins.

``true_probs`` is exact for ``checkerboard`` (overlap areas) and
``8gaussians`` (products of normal-CDF differences), Monte Carlo with
``MC_POINTS`` draws at seed ``MC_SEED`` for ``2spirals`` and ``rings`` (cached
per process), and the empirical histogram of the file for ``array``.
"""

import dataclasses
import functools
import math
from typing import Callable, Optional, Tuple

import numpy as np

from coopjax.config import common
from coopjax.data import arrays
from coopjax.data import batching

MC_POINTS = 4_000_000
MC_SEED = 20240607

# (xmin, xmax, ymin, ymax) of the reference checkerboard at scale 1; the fifth
# square is written with ymin > ymax there and means the interval between them.
CHECKERBOARD_SQUARES = (
    (1, 2, 0, 1), (0, 1, 1, 2), (0, 1, -1, 0), (1, 2, -2, -1),
    (-1, 0, -1, -2), (-2, -1, -1, 0), (-1, 0, 0, 1), (-2, -1, 1, 2))


@dataclasses.dataclass(frozen=True, eq=False)
class PointDataset:
  """A 2-D training set with the square and binning used to evaluate it.

  Attributes:
    name: dataset name (see ``known_datasets()``).
    points: ``[N, 2]`` float32 training points in host memory.
    box: half-width of the square ``[-box, box]^2`` of plots and metrics.
    bins: histogram bins per side for the TV metric.
    probs_fn: ``(box, bins) -> [bins, bins]`` true bin probabilities; ``None``
      means the empirical histogram of ``points``.
  """
  name: str
  points: np.ndarray
  box: float
  bins: int
  probs_fn: Optional[Callable[[float, int], np.ndarray]] = dataclasses.field(
      default=None, repr=False)

  kind = "points"
  num_classes = 0

  @property
  def example_shape(self) -> Tuple[int, ...]:
    return tuple(self.points.shape[1:])

  def __len__(self) -> int:
    return len(self.points)

  def batch(self, step: int, batch_size: int, seed: int,
            process_index: int = 0, process_count: int = 1):
    """``{'x': [B / P, 2]}``: this process's share of step ``step``'s batch."""
    return {"x": batching.batch_at(self.points, step, batch_size, seed,
                                   process_index, process_count)}

  def edges(self) -> np.ndarray:
    """Returns the ``[bins + 1]`` bin edges over ``[-box, box]`` (both axes)."""
    return np.linspace(-self.box, self.box, self.bins + 1)

  def true_probs(self) -> np.ndarray:
    """Probability mass of the true density in each bin.

    Returns:
      ``[bins, bins]`` float64, ``[i, j]`` = mass of x-bin ``i`` times y-bin
      ``j`` (``np.histogram2d(x, y)`` orientation); sums to the mass inside
      the box.
    """
    if self.probs_fn is None:
      x, y = self.points[:, 0], self.points[:, 1]
      counts = np.histogram2d(x, y, bins=[self.edges(), self.edges()])[0]
      return counts / len(self.points)
    return np.array(self.probs_fn(self.box, self.bins), dtype=np.float64)


# ----------------------------------------------------------------- samplers


def _checkerboard_rects(scale: float) -> np.ndarray:
  """``[8, 4]`` squares as (xlo, xhi, ylo, yhi) with lo <= hi, times scale."""
  rects = np.asarray(CHECKERBOARD_SQUARES, np.float64) * scale
  xs = np.sort(rects[:, :2], axis=1)
  ys = np.sort(rects[:, 2:], axis=1)
  return np.concatenate([xs, ys], axis=1)


def _sample_checkerboard(rng, n, scale):
  rects = _checkerboard_rects(scale)[rng.integers(0, 8, n)]
  u = rng.random((n, 2))
  x = rects[:, 0] + u[:, 0] * (rects[:, 1] - rects[:, 0])
  y = rects[:, 2] + u[:, 1] * (rects[:, 3] - rects[:, 2])
  return np.stack([x, y], axis=1)


def _gaussian_centres(scale: float) -> np.ndarray:
  angles = 2.0 * np.pi * np.arange(8) / 8
  return scale * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _sample_8gaussians(rng, n, scale):
  centres = _gaussian_centres(scale)[rng.integers(0, 8, n)]
  return centres + rng.normal(size=(n, 2)) * (scale / 8.0)


def _sample_2spirals(rng, n, scale):
  """FFJORD's two spirals (uniform jitter then Gaussian noise), times s/4."""
  t = np.sqrt(rng.random(n)) * 3.0 * np.pi
  arm = np.stack([-np.cos(t) * t + rng.random(n) * 0.5,
                  np.sin(t) * t + rng.random(n) * 0.5], axis=1)
  sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)[:, None]
  x = sign * arm / 3.0 + rng.normal(size=(n, 2)) * 0.1
  return x * (scale / 4.0)


def _sample_rings(rng, n, scale):
  radius = scale / 4.0 * rng.integers(1, 5, n)
  angle = rng.random(n) * 2.0 * np.pi
  ring = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
  return ring + rng.normal(size=(n, 2)) * (scale / 40.0)


# ---------------------------------------------------------- true bin probs


def _checkerboard_probs(scale, box, bins):
  """Exact: overlap area of each bin with the squares over their total area."""
  edges = np.linspace(-box, box, bins + 1)
  probs = np.zeros((bins, bins))
  rects = _checkerboard_rects(scale)
  lo, hi = edges[:-1], edges[1:]
  for xlo, xhi, ylo, yhi in rects:
    ox = np.clip(np.minimum(hi, xhi) - np.maximum(lo, xlo), 0.0, None)
    oy = np.clip(np.minimum(hi, yhi) - np.maximum(lo, ylo), 0.0, None)
    probs += np.outer(ox, oy)
  area = np.sum((rects[:, 1] - rects[:, 0]) * (rects[:, 3] - rects[:, 2]))
  return probs / area


def _normal_cdf(z: np.ndarray) -> np.ndarray:
  return 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))


def _8gaussians_probs(scale, box, bins):
  """Exact: per component, product of 1-D normal-CDF differences."""
  edges = np.linspace(-box, box, bins + 1)
  std = scale / 8.0
  probs = np.zeros((bins, bins))
  for cx, cy in _gaussian_centres(scale):
    px = np.diff(_normal_cdf((edges - cx) / std))
    py = np.diff(_normal_cdf((edges - cy) / std))
    probs += np.outer(px, py) / 8.0
  return probs


@functools.lru_cache(maxsize=16)
def _monte_carlo_probs(name, scale, box, bins):
  """``MC_POINTS`` draws at ``MC_SEED``, histogrammed; cached per process."""
  points = _SYNTHETIC[name][0](np.random.default_rng(MC_SEED), MC_POINTS, scale)
  edges = np.linspace(-box, box, bins + 1)
  counts = np.histogram2d(points[:, 0], points[:, 1], bins=[edges, edges])[0]
  probs = counts / MC_POINTS
  probs.setflags(write=False)
  return probs


# name -> (sampler, box / scale, bins, exact probs fn or None for Monte Carlo)
_SYNTHETIC = {
    "8gaussians": (_sample_8gaussians, 1.625, 26, _8gaussians_probs),
    "2spirals": (_sample_2spirals, 1.0, 32, None),
    "checkerboard": (_sample_checkerboard, 2.125, 34, _checkerboard_probs),
    "rings": (_sample_rings, 1.125, 36, None),
}
_KNOWN = ("8gaussians", "2spirals", "array", "checkerboard", "rings")


def known_datasets() -> Tuple[str, ...]:
  """Returns the names ``load_points`` accepts."""
  return _KNOWN


# ------------------------------------------------------------------ loading


def _positive(value, key, cast):
  try:
    value = cast(value)
  except (TypeError, ValueError) as e:
    raise ValueError(f"data.{key}={value!r} is not a number") from e
  if not (math.isfinite(value) and value > 0):
    raise ValueError(f"data.{key}={value!r} must be a finite number > 0")
  return value


def _box_and_bins(data_config, box, bins):
  """``data.box`` / ``data.bins`` if set, else the dataset's defaults."""
  box = _positive(data_config.box or box, "box", float)
  return box, _positive(data_config.bins or bins, "bins", int)


def _synthetic(name, data_config, seed):
  """Draws ``data.num_points`` points of a synthetic density."""
  sampler, box_per_scale, bins, exact = _SYNTHETIC[name]
  scale = _positive(data_config.scale, "scale", float)
  num = _positive(data_config.num_points, "num_points", int)
  box, bins = _box_and_bins(data_config, box_per_scale * scale, bins)
  points = sampler(np.random.default_rng(seed), num, scale).astype(np.float32)
  if exact is None:
    probs_fn = functools.partial(_monte_carlo_probs, name, scale)
  else:
    probs_fn = functools.partial(exact, scale)
  return PointDataset(name, points, box, bins, probs_fn)


def load_points(data_config, seed: int) -> PointDataset:
  """Builds the 2-D training set named by ``data_config.name``.

  Args:
    data_config: ``ConfigDict`` (or dict) with ``name`` and optionally
      ``batch_size``, ``num_points`` (default 50000), ``scale`` (default 4.0),
      ``path`` (for ``'array'``) and ``box`` / ``bins`` (override the
      dataset's defaults when set and non-zero).
    seed: seed of ``np.random.default_rng`` for synthetic points.

  Returns:
    The ``PointDataset``.

  Raises:
    ValueError: unknown name, bad numbers, a batch larger than the set, or a
      bad user file; FileNotFoundError: the user file is missing.
  """
  data_config = common.complete_data(data_config)
  name = data_config.name
  if name not in _KNOWN:
    raise ValueError(f"Unknown dataset {name!r} for 2-D data; known: "
                     f"{', '.join(_KNOWN)}")
  if name == "array":
    points = arrays.load_point_array(data_config.path)
    box, bins = _box_and_bins(data_config, arrays.covering_box(points), 34)
    dataset = PointDataset(name, points, box, bins)
  else:
    dataset = _synthetic(name, data_config, seed)
  batch_size = data_config.batch_size
  if batch_size > len(dataset.points):
    raise ValueError(
        f"data.batch_size={batch_size} exceeds the {len(dataset.points)} "
        f"points of dataset {name!r}; lower it or raise data.num_points.")
  return dataset
