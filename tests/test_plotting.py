"""Tests for coopjax.plotting: file sizes, pixel content and orientation."""

import numpy as np
import pytest
from matplotlib import image as mpl_image

from coopjax import plotting

BOX = 4.0


def _grid(g=40):
  centres = np.linspace(-BOX, BOX, g + 1)[:-1] + BOX / g
  x, y = np.meshgrid(centres, centres, indexing="ij")
  return np.stack([x, y], axis=-1)


def _bottom_right_logd(grid):
  """High only where x > 1 and y < -1: not symmetric under x <-> y or y flip."""
  return np.where((grid[..., 0] > 1) & (grid[..., 1] < -1), 0.0, -10.0)


def _quadrant_means(fig, ax, png):
  """Mean RGB sum of each quadrant of ``ax``'s panel in the saved ``png``."""
  bb = ax.get_window_extent()
  height = png.shape[0]
  top, bottom = int(height - bb.y1) + 3, int(height - bb.y0) - 3
  left, right = int(bb.x0) + 3, int(bb.x1) - 3
  panel = png[top:bottom, left:right, :3].sum(-1)
  h, w = panel.shape[0] // 2, panel.shape[1] // 2
  return {"top_left": panel[:h, :w].mean(), "top_right": panel[:h, w:].mean(),
          "bottom_left": panel[h:, :w].mean(),
          "bottom_right": panel[h:, w:].mean()}


def _only_extreme(means, key, largest):
  others = [v for k, v in means.items() if k != key]
  if largest:
    return means[key] > max(others) + 0.3
  return means[key] < min(others) - 0.02


def test_plot_levels_size(tmp_path):
  grid = _grid(24)
  logds = np.stack([_bottom_right_logd(grid)] * 2)
  samples = np.random.default_rng(0).normal(size=(2, 500, 2))
  path = tmp_path / "levels.png"
  plotting.plot_levels(path, logds, samples, grid, BOX, titles=["t=1", "t=0"])
  png = mpl_image.imread(path)
  assert png.shape[:2] == (900, 600)  # 3 rows x 2 columns of 300 px


def test_plot_levels_orientation(tmp_path):
  grid = _grid()
  logd = _bottom_right_logd(grid)
  logd[0, 0] = -np.inf  # masked, must not break the colour scale
  rng = np.random.default_rng(0)
  samples = np.stack([rng.uniform(1.5, 3.5, 4000), rng.uniform(-3.5, -1.5,
                                                                4000)], 1)
  fig = plotting._levels_figure(logd[None], samples[None], grid, BOX, None)
  path = tmp_path / "orient.png"
  fig.savefig(path, dpi=plotting.DPI)
  png = mpl_image.imread(path)
  axes = np.asarray(plotting.panel_axes(fig)).reshape(3, 1)
  # viridis: high values are yellow (bright); scatter: blue dots on white.
  assert _only_extreme(_quadrant_means(fig, axes[0, 0], png), "bottom_right",
                       largest=True)
  assert _only_extreme(_quadrant_means(fig, axes[1, 0], png), "bottom_right",
                       largest=True)
  assert _only_extreme(_quadrant_means(fig, axes[2, 0], png), "bottom_right",
                       largest=False)


def test_plot_levels_errors(tmp_path):
  grid = _grid(8)
  logds = np.zeros((2, 8, 8))
  with pytest.raises(ValueError, match="samples"):
    plotting.plot_levels(tmp_path / "a.png", logds, np.zeros((3, 5, 2)), grid,
                         BOX)
  with pytest.raises(ValueError, match="grid"):
    plotting.plot_levels(tmp_path / "a.png", np.zeros((2, 7, 7)),
                         np.zeros((2, 5, 2)), grid, BOX)
  with pytest.raises(ValueError, match="1 titles for 2 levels"):
    plotting.plot_levels(tmp_path / "a.png", logds, np.zeros((2, 5, 2)), grid,
                         BOX, titles=["x"])


def test_plot_samples_2d(tmp_path):
  samples = np.random.default_rng(0).normal(size=(300, 2))
  plotting.plot_samples_2d(tmp_path / "s.png", samples, BOX)
  assert mpl_image.imread(tmp_path / "s.png").shape[:2] == (300, 300)
  probs = np.zeros((8, 8))
  probs[5:8, 0:3] = 1 / 9  # x bins 5-7 of 8 (right), y bins 0-2 (bottom)
  fig = plotting._samples_figure(samples, BOX, probs, None)
  fig.savefig(tmp_path / "p.png", dpi=plotting.DPI)
  png = mpl_image.imread(tmp_path / "p.png")
  assert png.shape[:2] == (300, 600)
  assert _only_extreme(_quadrant_means(fig, fig.axes[1], png), "bottom_right",
                       largest=True)
  plotting.plot_samples_2d(tmp_path / "q.png", samples, BOX, probs,
                           np.linspace(-BOX, BOX, 9))
  assert mpl_image.imread(tmp_path / "q.png").shape[:2] == (300, 600)
  with pytest.raises(ValueError, match="does not match"):
    plotting.plot_samples_2d(tmp_path / "r.png", samples, BOX, probs,
                             np.linspace(-BOX, BOX, 5))


def test_save_image_grid_pixels(tmp_path):
  rng = np.random.default_rng(0)
  images = rng.uniform(-1.2, 1.2, size=(5, 4, 6, 3))
  path = tmp_path / "grid.png"
  plotting.save_image_grid(path, images, ncol=3)
  png = mpl_image.imread(path)
  assert png.shape[:2] == (2 * 5 + 1, 3 * 7 + 1)
  rgb = np.round(png[..., :3] * 255)
  expected = np.round((np.clip(images, -1, 1) + 1) * 127.5)
  np.testing.assert_array_equal(rgb[1:5, 1:7], expected[0])
  np.testing.assert_array_equal(rgb[6:10, 1:7], expected[3])  # row 1, col 0
  np.testing.assert_array_equal(rgb[6:10, 8:14], expected[4])  # row 1, col 1
  assert np.all(rgb[6:10, 15:21] == 0)  # unused cell
  for line in (0, 5, 10):
    assert np.all(rgb[line] == 0)  # padding rows
  for line in (0, 7, 14, 21):
    assert np.all(rgb[:, line] == 0)  # padding columns


def test_save_image_grid_gray_default_ncol_and_errors(tmp_path):
  images = np.linspace(-1, 1, 10 * 3 * 3).reshape(10, 3, 3, 1)
  plotting.save_image_grid(tmp_path / "g.png", images)
  png = mpl_image.imread(tmp_path / "g.png")
  assert png.shape[:2] == (3 * 4 + 1, 4 * 4 + 1)  # ncol = ceil(sqrt(10)) = 4
  np.testing.assert_allclose(png[1:4, 1:4, 0], png[1:4, 1:4, 2])  # gray
  assert png[1, 1, 0] == 0.0  # image 0 starts at -1
  assert png[11, 7, 0] == 1.0  # image 9 (row 2, col 1) ends at +1
  assert np.all(png[9:12, 9:16, :3] == 0.0)  # unused cells
  with pytest.raises(ValueError, match="C in"):
    plotting.save_image_grid(tmp_path / "bad.png", np.zeros((2, 3, 3, 2)))


def test_plot_levels_labels_colour_bars_and_the_true_data(tmp_path):
  grid = _grid(16)
  logds = np.stack([_bottom_right_logd(grid)] * 2)
  rng = np.random.default_rng(0)
  data = np.stack([rng.uniform(1.5, 3.5, 3000), rng.uniform(-3.5, -1.5,
                                                             3000)], 1)
  fig = plotting._levels_figure(logds, rng.normal(size=(2, 200, 2)), grid,
                                BOX, ["t=1", "t=0"], data=data,
                                title="cdrl on x, step 7: tv_samples=0.5")
  panels = np.asarray(plotting.panel_axes(fig)).reshape(3, 3)
  assert [a.get_title() for a in panels[0]] == ["data (truth)", "t=1", "t=0"]
  bars = [c for a in panels.ravel() for c in a.child_axes]
  assert len(bars) == 6 and all(b.get_ylabel() for b in bars)  # per image
  assert "density" in panels[0, 0].get_ylabel()
  # axes in data units: x under the bottom row, y left of the first column
  assert all('-4' in [t.get_text() for t in a.get_xticklabels()]
             for a in panels[2])
  assert all('4' in [t.get_text() for t in a.get_yticklabels()]
             for a in panels[:, 0])
  assert fig.get_suptitle() == "cdrl on x, step 7: tv_samples=0.5"
  # the data column is the data's histogram: bright only where the data is
  path = tmp_path / "data.png"
  fig.savefig(path, dpi=plotting.DPI)
  means = _quadrant_means(fig, panels[1, 0], mpl_image.imread(path))
  assert means["bottom_right"] > max(
      v for k, v in means.items() if k != "bottom_right") + 0.2
  with pytest.raises(ValueError, match="data"):
    plotting.plot_levels(tmp_path / "b.png", logds, np.zeros((2, 5, 2)), grid,
                         BOX, data=np.zeros((4, 3)))


def test_hidden_pixels_are_magenta_and_labelled_grids_name_their_columns(
    tmp_path):
  images = -np.ones((4, 2, 2, 1))
  images[1, 0, 0, 0] = np.nan
  canvas = plotting.image_canvas(images, ncol=2)
  assert tuple(canvas[1, 4]) == plotting.HIDDEN_RGB  # image 1, pixel (0, 0)
  assert tuple(canvas[1, 1]) == (0, 0, 0)  # image 0 is black, not hidden
  fig = plotting._labelled_grid_figure(
      images, 2, 4, "inpaint_3", ["observed", "true"], ["a", "b"],
      "magenta: hidden pixels")
  ax = fig.axes[0]
  assert [t.get_text() for t in ax.get_xticklabels()] == ["observed", "true"]
  assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
  assert fig.get_suptitle() == "inpaint_3"
  assert ax.get_xlabel() == "magenta: hidden pixels"
  plotting.save_labelled_grid(tmp_path / "g.png", images, 2, 4, "t")
  assert mpl_image.imread(tmp_path / "g.png").shape[0] > 2 * 9
  with pytest.raises(ValueError, match="1 column labels for 2 columns"):
    plotting.save_labelled_grid(tmp_path / "h.png", images, 2,
                                col_labels=["x"])
