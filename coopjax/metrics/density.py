"""Evaluation metrics: 2-D total variation (samples and densities) and AUROC.

Conventions shared with ``coopjax.data.toy2d``: a ``[bins, bins]`` probability
array ``p[i, j]`` is the mass of x-bin ``i`` times y-bin ``j`` over
``[-box, box]^2`` (``np.histogram2d(x, y)`` orientation), and mass outside the
box counts as one extra bin.
"""

import numpy as np

from coopjax.data.toy2d import PointDataset

# ------------------------------------------------------- 2-D total variation


def histogram_probs(samples: np.ndarray, edges: np.ndarray) -> np.ndarray:
  """Fraction of the samples falling in each 2-D bin.

  Args:
    samples: ``[N, 2]`` points (x, y); non-finite rows count as outside.
    edges: ``[bins + 1]`` increasing bin edges, used for both axes.

  Returns:
    ``[bins, bins]`` counts divided by ``N`` (all samples, so samples outside
    the box are lost mass and the result sums to <= 1).

  Raises:
    ValueError: ``samples`` is not a non-empty ``[N, 2]`` array.
  """
  samples = np.asarray(samples, dtype=np.float64)
  if samples.ndim != 2 or samples.shape[1] != 2 or not len(samples):
    raise ValueError(f"samples must be [N, 2] with N >= 1, got shape "
                     f"{samples.shape}")
  finite = samples[np.all(np.isfinite(samples), axis=1)]
  counts = np.histogram2d(finite[:, 0], finite[:, 1], bins=[edges, edges])[0]
  return counts / len(samples)


def tv_distance(p: np.ndarray, q: np.ndarray) -> float:
  """Total variation distance between two binned distributions.

  The mass missing from each array (``1 - sum``, i.e. outside the box) is one
  extra bin: ``TV = 0.5 * (sum |p - q| + |(1 - sum p) - (1 - sum q)|)``, which
  is in ``[0, 1]`` for sub-probability arrays.

  Args:
    p: bin probabilities, any shape, non-negative, summing to <= 1.
    q: same shape as ``p``.

  Returns:
    The distance as a Python float.

  Raises:
    ValueError: the shapes differ.
  """
  p = np.asarray(p, dtype=np.float64)
  q = np.asarray(q, dtype=np.float64)
  if p.shape != q.shape:
    raise ValueError(f"tv_distance needs equal shapes, got {p.shape} and "
                     f"{q.shape}")
  outside = abs(np.sum(p) - np.sum(q))
  return float(0.5 * (np.sum(np.abs(p - q)) + outside))


def sample_tv(samples: np.ndarray, dataset: PointDataset) -> float:
  """TV between the samples' histogram and the dataset's true bin masses.

  Args:
    samples: ``[N, 2]`` model samples.
    dataset: the ``PointDataset`` giving edges and ``true_probs``.

  Returns:
    ``tv_distance(histogram_probs(samples, edges), true_probs)``.
  """
  return tv_distance(histogram_probs(samples, dataset.edges()),
                     dataset.true_probs())


def grid_probs(log_density: np.ndarray, bins: int) -> np.ndarray:
  """Bin probabilities of an unnormalised density given on a fine grid.

  The density is taken as constant on each fine cell (all cells have the same
  area), normalised over the box: a softmax over all fine cells, then each
  ``k x k`` block summed into its coarse bin. A NaN or ``+inf`` anywhere, or
  no finite value, gives an all-NaN result (so the TV is NaN) rather than an
  error, since it reports a diverged model.

  Args:
    log_density: ``[bins * k, bins * k]`` log-density at the cell centres of
      ``fine_grid`` (``[i, j]`` = (x_i, y_j)), ``k >= 1``; ``-inf`` allowed.
    bins: coarse bins per side.

  Returns:
    ``[bins, bins]`` float64 probabilities summing to 1.

  Raises:
    ValueError: the shape is not ``[bins * k, bins * k]``.
  """
  logd = np.asarray(log_density, dtype=np.float64)
  g = logd.shape[0] if logd.ndim == 2 else 0
  if logd.ndim != 2 or logd.shape[1] != g or g < bins or g % bins:
    raise ValueError(f"log_density must be [bins * k, bins * k] with bins="
                     f"{bins} and integer k >= 1, got shape {logd.shape}")
  top = np.max(logd)
  if np.isnan(logd).any() or not np.isfinite(top):
    return np.full((bins, bins), np.nan)
  w = np.exp(logd - top)
  k = g // bins
  return (w / np.sum(w)).reshape(bins, k, bins, k).sum(axis=(1, 3))


def density_tv(log_density_fine: np.ndarray, dataset: PointDataset) -> float:
  """TV between a model density on ``fine_grid(dataset, k)`` and the truth.

  Args:
    log_density_fine: ``[bins * k, bins * k]`` unnormalised log-density at
      ``fine_grid(dataset, k)``.
    dataset: the ``PointDataset``.

  Returns:
    ``tv_distance(grid_probs(log_density_fine, bins), true_probs)``.
  """
  return tv_distance(grid_probs(log_density_fine, dataset.bins),
                     dataset.true_probs())


def fine_grid(dataset: PointDataset, k: int = 6) -> np.ndarray:
  """Cell centres of the ``k``-times refined histogram grid.

  Args:
    dataset: gives ``box`` and ``bins``.
    k: fine cells per coarse bin and side, >= 1.

  Returns:
    ``[bins * k, bins * k, 2]`` float32, ``[i, j] = (x_i, y_j)`` with ``x``
    and ``y`` increasing, matching ``histogram_probs`` / ``grid_probs``.

  Raises:
    ValueError: ``k < 1``.
  """
  if k < 1:
    raise ValueError(f"fine_grid needs k >= 1, got k={k}")
  edges = np.linspace(-dataset.box, dataset.box, dataset.bins * k + 1)
  centres = 0.5 * (edges[1:] + edges[:-1])
  x, y = np.meshgrid(centres, centres, indexing="ij")
  return np.stack([x, y], axis=-1).astype(np.float32)


# ------------------------------------------------------------ OOD detection


def _average_ranks(values: np.ndarray) -> np.ndarray:
  """1-based ranks, tied values sharing the average of their ranks."""
  _, inverse, counts = np.unique(values, return_inverse=True,
                                 return_counts=True)
  first = np.cumsum(counts) - counts
  return (first + (counts + 1) / 2.0)[inverse.reshape(-1)]


def auroc(scores_pos: np.ndarray, scores_neg: np.ndarray) -> float:
  """Area under the ROC curve, rank-based (Mann-Whitney U), ties count half.

  Equals ``P(s_pos > s_neg) + 0.5 * P(s_pos == s_neg)`` over all pairs, so 1
  when every positive scores above every negative and 0.5 for identical sets.

  Args:
    scores_pos: scores of the positives (expected to be higher), any shape.
    scores_neg: scores of the negatives, any shape.

  Returns:
    The AUROC as a Python float.

  Raises:
    ValueError: an empty set or a NaN score.
  """
  pos = np.asarray(scores_pos, dtype=np.float64).reshape(-1)
  neg = np.asarray(scores_neg, dtype=np.float64).reshape(-1)
  if not len(pos) or not len(neg):
    raise ValueError(f"auroc needs both sets non-empty, got {len(pos)} "
                     f"positives and {len(neg)} negatives")
  if np.isnan(pos).any() or np.isnan(neg).any():
    raise ValueError("auroc got NaN scores")
  ranks = _average_ranks(np.concatenate([pos, neg]))
  u = np.sum(ranks[:len(pos)]) - len(pos) * (len(pos) + 1) / 2.0
  return float(u / (len(pos) * len(neg)))
