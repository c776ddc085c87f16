"""coopjax.metrics.density: total variation of 2-D histograms and densities, AUROC."""

import ml_collections
import numpy as np
import pytest

from coopjax import data
from coopjax import metrics
from coopjax.data import toy2d


def _dataset(**kwargs):
  cfg = dict(name="checkerboard", num_points=1000)
  cfg.update(kwargs)
  return data.load_points(ml_collections.ConfigDict(cfg), seed=0)


def test_tv_distance_hand_computed():
  p = np.array([[0.5, 0.5], [0.0, 0.0]])
  q = np.full((2, 2), 0.25)
  # |p - q| = 0.25 in each of 4 bins: 0.5 * 1.0.
  assert metrics.tv_distance(p, q) == pytest.approx(0.5)
  assert metrics.tv_distance(q, p) == pytest.approx(0.5)
  assert metrics.tv_distance(p, p) == 0.0
  # p loses 0.25 outside the box: 0.5 * (0.25 + |0.75 - 1.0|) = 0.25.
  short = np.array([[0.5, 0.25], [0.0, 0.0]])
  assert metrics.tv_distance(short, p) == pytest.approx(0.25)
  # Both lose 0.2 outside, which cancels: 0.5 * (0.1 + 0.1) = 0.1.
  a = np.array([0.5, 0.3, 0.0])
  b = np.array([0.4, 0.4, 0.0])
  assert metrics.tv_distance(a, b) == pytest.approx(0.1)
  # Only b loses mass: 0.5 * (0.1 + 0.1 + 0.2 + |0.8 - 1.0|) = 0.3.
  assert metrics.tv_distance(b, [0.5, 0.3, 0.2]) == pytest.approx(0.3)


def test_tv_disjoint_supports_is_one():
  p = np.zeros((3, 3))
  q = np.zeros((3, 3))
  p[0, 0], p[1, 1] = 0.5, 0.5
  q[2, 2] = 1.0
  assert metrics.tv_distance(p, q) == pytest.approx(1.0)
  # All mass outside the box vs all inside is also disjoint.
  assert metrics.tv_distance(np.zeros((3, 3)), q) == pytest.approx(1.0)


def test_tv_shape_mismatch():
  with pytest.raises(ValueError, match=r"\(2, 2\) and \(3,\)"):
    metrics.tv_distance(np.zeros((2, 2)), np.zeros(3))


def test_histogram_probs_orientation_and_lost_mass():
  edges = np.array([-1.0, 0.0, 1.0])
  samples = np.array([[-0.5, 0.5], [-0.5, 0.7], [0.5, -0.5], [3.0, 0.0],
                      [np.nan, 0.0]])
  probs = metrics.histogram_probs(samples, edges)
  np.testing.assert_allclose(probs, [[0.0, 0.4], [0.2, 0.0]])  # [x, y]
  assert metrics.tv_distance(probs, np.array([[0, 0.5], [0.5, 0]])) == (
      pytest.approx(0.5 * (0.1 + 0.3 + 0.4)))


def test_sample_tv_of_far_samples_is_one():
  ds = _dataset()
  assert metrics.sample_tv(np.full((10, 2), 100.0), ds) == pytest.approx(1.0)


def test_grid_probs_constant_is_uniform():
  probs = metrics.grid_probs(np.full((20, 20), -3.7), bins=5)
  np.testing.assert_allclose(probs, np.full((5, 5), 1 / 25), rtol=1e-12)


def test_grid_probs_sums_blocks():
  logd = np.full((6, 6), -np.inf)
  logd[4, 1] = np.log(3.0)   # coarse bin (2, 0)
  logd[5, 0] = 0.0           # same coarse bin
  logd[0, 5] = 0.0           # coarse bin (0, 2)
  probs = metrics.grid_probs(logd, bins=3)
  expected = np.zeros((3, 3))
  expected[2, 0], expected[0, 2] = 0.8, 0.2
  np.testing.assert_allclose(probs, expected, atol=1e-15)


def test_grid_probs_degenerate_and_bad_shapes():
  assert np.isnan(metrics.grid_probs(np.full((4, 4), -np.inf), 2)).all()
  bad = np.zeros((4, 4))
  bad[0, 0] = np.nan
  assert np.isnan(metrics.grid_probs(bad, 2)).all()
  for shape, bins in [((6, 6), 4), ((6, 4), 2), ((2, 2), 4), ((6,), 3)]:
    with pytest.raises(ValueError, match="bins \\* k"):
      metrics.grid_probs(np.zeros(shape), bins)


def test_fine_grid_orientation_matches_histogram():
  ds = _dataset()
  grid = metrics.fine_grid(ds, k=3)
  assert grid.shape == (102, 102, 2) and grid.dtype == np.float32
  assert np.all(np.diff(grid[:, 0, 0]) > 0)  # x grows with i, const in j
  assert np.all(grid[:, :, 0] == grid[:, :1, 0])
  assert np.all(np.diff(grid[0, :, 1]) > 0)  # y grows with j, const in i
  assert np.all(grid[:, :, 1] == grid[:1, :, 1])
  np.testing.assert_allclose(grid[0, 0], [-8.5 + 0.25 / 3] * 2, rtol=1e-6)
  # Each coarse bin holds its k x k fine centres.
  counts = metrics.histogram_probs(grid.reshape(-1, 2), ds.edges())
  np.testing.assert_allclose(counts, 1 / 34**2)
  with pytest.raises(ValueError, match="k >= 1"):
    metrics.fine_grid(ds, k=0)


def test_density_tv_orientation_with_asymmetric_density():
  # Empirical truth: 90% of the points at (2.25, -3.25), a coarse-bin centre;
  # a narrow bump there on the fine grid must land in the same [x, y] bin,
  # the transposed bump must not.
  pts = np.tile(np.array([[2.25, -3.25]], np.float32), (10, 1))
  pts[0] = [-4.0, 4.0]  # sets the box; 10% of the mass
  ds = toy2d.PointDataset("array", pts, 4.5, 18)
  grid = metrics.fine_grid(ds, k=4).astype(np.float64)
  bump = -((grid[..., 0] - 2.25)**2 + (grid[..., 1] + 3.25)**2) / (2 * 0.02**2)
  assert metrics.density_tv(bump, ds) == pytest.approx(0.1, abs=1e-3)
  assert metrics.density_tv(bump.T, ds) == pytest.approx(1.0, abs=1e-3)


def _checkerboard_logd(grid, scale=4.0):
  x, y = grid[..., 0], grid[..., 1]
  inside = np.zeros(x.shape, bool)
  for x0, x1, y0, y1 in toy2d.CHECKERBOARD_SQUARES:
    xl, xh = sorted((x0 * scale, x1 * scale))
    yl, yh = sorted((y0 * scale, y1 * scale))
    inside |= (x >= xl) & (x <= xh) & (y >= yl) & (y <= yh)
  return np.where(inside, np.log(1 / 128), -np.inf)


@pytest.mark.parametrize("bins,exact", [(34, True), (30, False)])
def test_density_tv_of_true_checkerboard_is_near_zero(bins, exact):
  ds = _dataset(bins=bins)
  tv = metrics.density_tv(_checkerboard_logd(metrics.fine_grid(ds)), ds)
  if exact:  # Fine cells align with the square edges: no error at all.
    assert tv < 1e-12
  else:  # Only fine cells straddling an edge are misassigned.
    assert 1e-4 < tv < 0.02


def test_density_tv_of_true_8gaussians_is_near_zero():
  ds = _dataset(name="8gaussians")
  grid = metrics.fine_grid(ds).astype(np.float64)
  centres = toy2d._gaussian_centres(4.0)
  sq = np.sum((grid[:, :, None, :] - centres)**2, axis=-1)
  logd = np.log(np.sum(np.exp(-sq / (2 * 0.5**2)), axis=-1))
  assert metrics.density_tv(logd, ds) < 0.01
  assert metrics.density_tv(logd + 123.0, ds) < 0.01  # unnormalised is fine
  assert metrics.density_tv(logd * 0.25, ds) > 0.2   # a wider density is not


def _pairwise_auroc(pos, neg):
  diff = pos[:, None] - neg[None, :]
  return np.mean((diff > 0) + 0.5 * (diff == 0))


def test_auroc_matches_pairwise_with_ties():
  rng = np.random.default_rng(0)
  for n_pos, n_neg in [(1, 1), (7, 13), (50, 40), (200, 3)]:
    pos = rng.integers(0, 6, n_pos).astype(float)  # many ties
    neg = rng.integers(-1, 4, n_neg).astype(float)
    assert metrics.auroc(pos, neg) == pytest.approx(_pairwise_auroc(pos, neg))
    pos, neg = rng.normal(size=n_pos), rng.normal(0.5, size=n_neg)
    assert metrics.auroc(pos, neg) == pytest.approx(_pairwise_auroc(pos, neg))


def test_auroc_extremes():
  a = np.linspace(0, 1, 30)
  assert metrics.auroc(a + 2.0, a) == 1.0
  assert metrics.auroc(a, a + 2.0) == 0.0
  assert metrics.auroc(a, a) == 0.5
  assert metrics.auroc(np.ones(4), np.ones(9)) == 0.5
  with pytest.raises(ValueError, match="non-empty"):
    metrics.auroc([], a)
  with pytest.raises(ValueError, match="NaN"):
    metrics.auroc([np.nan], a)
