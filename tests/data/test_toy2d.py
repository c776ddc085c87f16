"""coopjax.data.toy2d: the 2-D toy densities, their true probabilities, batching."""

import ml_collections
import numpy as np
import pytest

from coopjax import data
from coopjax import metrics
from coopjax.data import toy2d


def _config(**kwargs):
  base = dict(name="checkerboard", batch_size=100)
  base.update(kwargs)
  return ml_collections.ConfigDict(base)


def _in_squares(x, y, scale=4.0):
  """Membership in the reference squares, written out independently."""
  inside = np.zeros(np.shape(x), bool)
  for x0, x1, y0, y1 in toy2d.CHECKERBOARD_SQUARES:
    xl, xh = sorted((x0 * scale, x1 * scale))
    yl, yh = sorted((y0 * scale, y1 * scale))
    inside |= (x >= xl) & (x <= xh) & (y >= yl) & (y <= yh)
  return inside


def test_checkerboard_true_probs_exact_on_aligned_bins():
  ds = data.load_points(_config(), seed=0)
  assert (ds.box, ds.bins) == (8.5, 34)
  probs = ds.true_probs()
  assert probs.shape == (34, 34)
  np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-12)
  centres = 0.5 * (ds.edges()[1:] + ds.edges()[:-1])
  inside = _in_squares(*np.meshgrid(centres, centres, indexing="ij"))
  # 8 squares of area 16 = 128; a bin of area 0.25 inside holds 1 / 512.
  assert inside.sum() == 8 * 64
  np.testing.assert_allclose(probs[inside], 1 / 512, rtol=1e-12)
  assert np.all(probs[~inside] == 0.0)


def test_checkerboard_true_probs_exact_on_straddling_bins():
  ds = data.load_points(_config(bins=30), seed=0)
  probs = ds.true_probs()
  edges = ds.edges()  # width 17/30; bin 22 = [3.9667, 4.5333] holds x = 4
  assert edges[22] < 4.0 < edges[23]
  # Bin (22, 16): y in [0.567, 1.133]; only square [4, 8] x [0, 4] overlaps,
  # on x in [4, 68/15]: (8/15) * (17/30) / 128 = 17/7200.
  np.testing.assert_allclose(probs[22, 16], 17 / 7200, rtol=1e-10)
  # Bin (22, 22) at the corner (4, 4): [4,8]x[0,4] and [0,4]x[4,8] each give
  # (8/15) * (1/30), so 2 * 8 / 450 / 128 = 1/3600.
  np.testing.assert_allclose(probs[22, 22], 1 / 3600, rtol=1e-10)
  np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-12)


def _expected_tv(probs, n, mc_points=None):
  """Mean TV of an n-sample histogram to ``probs`` from sampling noise alone.

  n p-hat ~ Binomial(n, p) per bin, so E|p-hat - p| ~ sqrt(2/pi)
  sqrt(p (1 - p) / n); with Monte Carlo ``probs`` their own noise adds in
  quadrature (variance factor 1 + n / mc_points).
  """
  p = probs[probs > 0]
  inflation = 1.0 if mc_points is None else np.sqrt(1.0 + n / mc_points)
  return 0.5 * np.sqrt(2 / np.pi) * np.sum(np.sqrt(p * (1 - p) / n)) * inflation


def test_checkerboard_samples_lie_in_squares_and_match_true_probs():
  n = 1_000_000
  ds = data.load_points(_config(num_points=n), seed=3)
  assert ds.points.shape == (n, 2) and ds.points.dtype == np.float32
  assert _in_squares(ds.points[:, 0], ds.points[:, 1]).all()
  # 512 bins of mass p = 1/512: E TV = 0.5 * 512 * sqrt(2/pi) sqrt(p / n)
  # = 0.0090 at n = 1e6, with a spread of ~3e-4, so 0.02 is > 30 spreads
  # away; one square missing would give 0.125. (At n = 200k the noise alone
  # gives E TV = 0.0202, so a 0.02 bound needs the larger n.)
  assert _expected_tv(ds.true_probs(), n) == pytest.approx(0.0090, abs=1e-4)
  assert metrics.sample_tv(ds.points, ds) < 0.02


@pytest.mark.parametrize("name", ["checkerboard", "8gaussians", "2spirals",
                                  "rings"])
def test_sample_histograms_match_true_probs_up_to_noise(name):
  # TV of 200k fresh samples against exact (checkerboard, 8gaussians) or
  # 4e6-point Monte Carlo probabilities (2spirals, rings) is within 30% of
  # the pure-noise expectation (its spread is ~3% of it); a wrong scale,
  # width or orientation of true_probs gives TV > 0.1.
  n = 200_000
  ds = data.load_points(_config(name=name, num_points=n), seed=1)
  probs = ds.true_probs()
  assert probs.sum() > 0.9999 and probs.sum() <= 1.0 + 1e-9
  mc = toy2d.MC_POINTS if name in ("2spirals", "rings") else None
  assert metrics.sample_tv(ds.points, ds) < 1.3 * _expected_tv(probs, n, mc)
  assert np.mean(np.abs(ds.points) < ds.box) > 0.9999


def test_8gaussians_parameters():
  ds = data.load_points(_config(name="8gaussians", num_points=80_000), seed=0)
  radii = np.linalg.norm(ds.points, axis=1)
  # Radius of N((4, 0), 0.5^2 I) has mean ~ 4 + 0.5^2 / (2 * 4).
  np.testing.assert_allclose(radii.mean(), 4.03, atol=0.01)
  assert (ds.box, ds.bins) == (6.5, 26)


def test_true_probs_is_a_fresh_copy():
  ds = data.load_points(_config(name="rings"), seed=0)
  ds.true_probs()[:] = 0.0
  assert ds.true_probs().sum() > 0.99


def test_seed_changes_points_deterministically():
  a = data.load_points(_config(), seed=5).points
  np.testing.assert_array_equal(a, data.load_points(_config(), seed=5).points)
  assert not np.array_equal(a, data.load_points(_config(), seed=6).points)


def test_batch_at_deterministic_distinct_and_sliced():
  points = np.arange(2000, dtype=np.float32).reshape(1000, 2)
  batch = data.batch_at(points, step=7, batch_size=64, seed=3)
  assert batch.shape == (64, 2) and batch.dtype == np.float32
  np.testing.assert_array_equal(batch, data.batch_at(points, 7, 64, 3))
  assert len(np.unique(batch[:, 0])) == 64  # without replacement
  assert not np.array_equal(batch, data.batch_at(points, 8, 64, 3))
  assert not np.array_equal(batch, data.batch_at(points, 7, 64, 4))
  parts = [data.batch_at(points, 7, 64, 3, process_index=i, process_count=4)
           for i in range(4)]
  assert all(p.shape == (16, 2) for p in parts)
  np.testing.assert_array_equal(np.concatenate(parts), batch)


@pytest.mark.parametrize("kwargs,words", [
    (dict(batch_size=1001), "batch_size=1001"),
    (dict(batch_size=64, process_count=3), "not divisible"),
    (dict(batch_size=64, process_count=4, process_index=4), "process_index=4"),
    (dict(batch_size=64, step=-1), "must be >= 0"),
])
def test_batch_at_errors(kwargs, words):
  points = np.zeros((1000, 2), np.float32)
  args = dict(step=0, seed=0)
  args.update(kwargs)
  with pytest.raises(ValueError, match=words):
    data.batch_at(points, **args)


def test_unknown_name_lists_known():
  with pytest.raises(ValueError) as err:
    data.load_points(_config(name="foo"), seed=0)
  assert str(err.value) == ("Unknown dataset 'foo' for 2-D data; known: "
                            "8gaussians, 2spirals, array, checkerboard, rings")
  assert data.kind_of("rings") == "points"
  with pytest.raises(ValueError, match="known: points: 8gaussians"):
    data.kind_of("foo")


def test_batch_size_larger_than_dataset():
  with pytest.raises(ValueError, match="data.batch_size=600 exceeds the 500"):
    data.load_points(_config(num_points=500, batch_size=600), seed=0)


def test_bad_scale():
  with pytest.raises(ValueError, match="data.scale=-1.0"):
    data.load_points(_config(scale=-1.0), seed=0)


def test_2spirals_matches_ffjord_formula():
  # FFJORD's toy_data.py '2spirals', written independently with a Generator:
  # at scale 4 our density must be the same, so 200k of its points are as
  # close to true_probs as our own samples (see the noise test above).
  rng = np.random.default_rng(11)
  half = 100_000
  n = np.sqrt(rng.random((half, 1))) * 540 * (2 * np.pi) / 360
  d1x = -np.cos(n) * n + rng.random((half, 1)) * 0.5
  d1y = np.sin(n) * n + rng.random((half, 1)) * 0.5
  x = np.vstack((np.hstack((d1x, d1y)), np.hstack((-d1x, -d1y)))) / 3
  x += rng.normal(size=x.shape) * 0.1
  ds = data.load_points(_config(name="2spirals"), seed=0)
  probs = ds.true_probs()
  bound = 1.3 * _expected_tv(probs, 2 * half, toy2d.MC_POINTS)
  assert metrics.sample_tv(x, ds) < bound
  assert metrics.sample_tv(x[:half], ds) > 0.4  # one arm alone is far off


def test_rings_radii_and_weights():
  ds = data.load_points(_config(name="rings", num_points=100_000), seed=0)
  radii = np.linalg.norm(ds.points, axis=1)
  for k in range(1, 5):  # radius k, equal weights, radial std 0.1
    near = radii[np.abs(radii - k) < 0.5]
    assert len(near) / len(radii) == pytest.approx(0.25, abs=0.01)
    assert np.std(near - k) == pytest.approx(0.1, rel=0.05)
  assert (ds.box, ds.bins) == (4.5, 36)
