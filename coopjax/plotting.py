"""Figures written straight to PNG files, headless.

Figures are built with ``matplotlib.figure.Figure`` on an explicit Agg canvas
(``FigureCanvasAgg``): no display is ever opened, pyplot's global figure list
is never used (nothing leaks in a long training run), and the global backend
of a caller (e.g. a notebook) is left untouched. Orientation: 2-D arrays on a
grid ``[i, j] = (x_i, y_j)`` (``coopjax.metrics.fine_grid``) are drawn with x
horizontal and y vertical, y up.
"""

import math
from typing import Optional, Sequence

import numpy as np
from matplotlib import image as mpl_image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PANEL_INCHES = 3.0
DPI = 100


def _new_figure(ncols: int, nrows: int) -> Figure:
  fig = Figure(figsize=(PANEL_INCHES * ncols, PANEL_INCHES * nrows), dpi=DPI,
               layout="constrained")
  FigureCanvasAgg(fig)
  return fig


def _save(fig: Figure, path) -> None:
  fig.savefig(path, dpi=DPI, format="png")


def _square_axes(ax, box: float) -> None:
  ax.set_xlim(-box, box)
  ax.set_ylim(-box, box)
  ax.set_aspect("equal")
  ax.set_xticks([])
  ax.set_yticks([])


def _show_grid(ax, values: np.ndarray, extent, box: float) -> None:
  """Draws ``values[i, j]`` at (x_i, y_j): transposed, origin lower-left."""
  ax.imshow(np.ma.masked_invalid(values.T), origin="lower", extent=extent,
            cmap="viridis", interpolation="nearest")
  _square_axes(ax, box)


def _scatter(ax, points: np.ndarray, box: float) -> None:
  ax.scatter(points[:, 0], points[:, 1], s=1.0, c="tab:blue", linewidths=0,
             rasterized=True)
  _square_axes(ax, box)


def _grid_extent(grid: np.ndarray):
  """(left, right, bottom, top) of the cells whose centres are ``grid``."""
  dx = grid[1, 0, 0] - grid[0, 0, 0]
  dy = grid[0, 1, 1] - grid[0, 0, 1]
  return (grid[0, 0, 0] - dx / 2, grid[-1, 0, 0] + dx / 2,
          grid[0, 0, 1] - dy / 2, grid[0, -1, 1] + dy / 2)


def _normalised_density(logd: np.ndarray) -> np.ndarray:
  finite = logd[np.isfinite(logd)]
  if not finite.size:
    return np.zeros_like(logd)
  dens = np.where(np.isfinite(logd), np.exp(logd - finite.max()), 0.0)
  return dens / dens.sum()


def _levels_figure(log_densities, samples, grid, box, titles) -> Figure:
  """The ``plot_levels`` figure (see there), not yet written."""
  logds = np.asarray(log_densities, dtype=np.float64)
  samples = np.asarray(samples, dtype=np.float64)
  grid = np.asarray(grid, dtype=np.float64)
  if (logds.ndim != 3 or grid.ndim != 3 or grid.shape[2] != 2
      or logds.shape[1:] != grid.shape[:2] or min(grid.shape[:2]) < 2):
    raise ValueError(f"plot_levels needs log_densities [T, G, G] on grid "
                     f"[G, G, 2] with G >= 2, got {logds.shape} and "
                     f"{grid.shape}")
  num = logds.shape[0]
  if samples.ndim != 3 or samples.shape[0] != num or samples.shape[2] != 2:
    raise ValueError(f"plot_levels needs samples [T={num}, N, 2], got "
                     f"{samples.shape}")
  if titles is None:
    titles = [f"level {t}" for t in range(num)]
  if len(titles) != num:
    raise ValueError(f"plot_levels got {len(titles)} titles for {num} levels")
  extent = _grid_extent(grid)
  fig = _new_figure(num, 3)
  axes = fig.subplots(3, num, squeeze=False)
  for t in range(num):
    _show_grid(axes[0, t], logds[t], extent, box)
    _show_grid(axes[1, t], _normalised_density(logds[t]), extent, box)
    _scatter(axes[2, t], samples[t], box)
    axes[0, t].set_title(str(titles[t]))
  for row, label in enumerate(("log density", "density", "samples")):
    axes[row, 0].set_ylabel(label)
  return fig


def plot_levels(path, log_densities: np.ndarray, samples: np.ndarray,
                grid: np.ndarray, box: float,
                titles: Optional[Sequence[str]] = None) -> None:
  """Writes the per-noise-level figure of the CDRL 2-D toy.

  One column per level, in the order given (highest noise first by
  convention); rows: the log density (energy) as an image, the density
  ``exp(logd - max)`` normalised to sum 1 as an image, and the samples as a
  scatter. Every panel spans ``[-box, box]^2``, x horizontal, y up.
  ``PANEL_INCHES`` square panels at ``DPI``: ``3 * 300`` by ``T * 300`` px.

  Args:
    path: output PNG path.
    log_densities: ``[T, G, G]`` log densities on ``grid`` (``-inf`` allowed).
    samples: ``[T, N, 2]`` samples per level.
    grid: ``[G, G, 2]`` cell centres, ``[i, j] = (x_i, y_j)`` (``fine_grid``).
    box: half-width of the plotted square.
    titles: ``T`` column titles; default ``'level t'``.

  Raises:
    ValueError: inconsistent shapes or number of titles.
  """
  _save(_levels_figure(log_densities, samples, grid, box, titles), path)


def _samples_figure(samples, box, true_probs, edges) -> Figure:
  """The ``plot_samples_2d`` figure (see there), not yet written."""
  samples = np.asarray(samples, dtype=np.float64)
  if samples.ndim != 2 or samples.shape[1] != 2:
    raise ValueError(f"plot_samples_2d needs samples [N, 2], got "
                     f"{samples.shape}")
  fig = _new_figure(1 if true_probs is None else 2, 1)
  axes = fig.subplots(1, 1 if true_probs is None else 2, squeeze=False)[0]
  _scatter(axes[0], samples, box)
  axes[0].set_title("samples")
  if true_probs is not None:
    probs = np.asarray(true_probs, dtype=np.float64)
    if edges is None:
      edges = np.linspace(-box, box, probs.shape[0] + 1)
    edges = np.asarray(edges, dtype=np.float64)
    if probs.ndim != 2 or probs.shape != (len(edges) - 1,) * 2:
      raise ValueError(f"true_probs {probs.shape} does not match "
                       f"{len(edges)} edges")
    extent = (edges[0], edges[-1], edges[0], edges[-1])
    _show_grid(axes[1], probs, extent, box)
    axes[1].set_title("true density")
  return fig


def plot_samples_2d(path, samples: np.ndarray, box: float,
                    true_probs: Optional[np.ndarray] = None,
                    edges: Optional[np.ndarray] = None) -> None:
  """Writes a scatter of samples, beside the true bin masses if given.

  Args:
    path: output PNG path (300 px high, 300 px wide per panel).
    samples: ``[N, 2]`` points.
    box: half-width of the plotted square.
    true_probs: optional ``[bins, bins]`` masses (``histogram2d``
      orientation), drawn as a heatmap with x horizontal, y up.
    edges: ``[bins + 1]`` edges of ``true_probs``; default evenly spaced over
      ``[-box, box]``.

  Raises:
    ValueError: bad shapes.
  """
  _save(_samples_figure(samples, box, true_probs, edges), path)


def save_image_grid(path, images: np.ndarray, ncol: Optional[int] = None,
                    zoom: int = 1) -> None:
  """Writes images as one PNG grid, pixel for pixel, with 1-px black padding.

  Images fill the grid row by row; unused cells stay black. The PNG is
  ``nrow * (H + 1) + 1`` by ``ncol * (W + 1) + 1`` pixels, RGB.

  Args:
    path: output PNG path.
    images: ``[N, H, W, C]`` with values in ``[-1, 1]`` (clipped), ``C`` in
      ``{1, 3}``.
    ncol: images per row; default ``ceil(sqrt(N))``.
    zoom: each pixel becomes a ``zoom x zoom`` block (small images such as
      the 8x8 digits).

  Raises:
    ValueError: bad shape or ``ncol < 1``.
  """
  images = np.asarray(images, dtype=np.float64)
  if images.ndim != 4 or images.shape[-1] not in (1, 3) or not len(images):
    raise ValueError(f"save_image_grid needs images [N, H, W, C] with N >= 1 "
                     f"and C in {{1, 3}}, got shape {images.shape}")
  if zoom > 1:
    images = images.repeat(zoom, axis=1).repeat(zoom, axis=2)
  num, height, width, _ = images.shape
  ncol = ncol or math.ceil(math.sqrt(num))
  if ncol < 1:
    raise ValueError(f"save_image_grid needs ncol >= 1, got {ncol}")
  nrow = math.ceil(num / ncol)
  pixels = np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5)
  pixels = np.broadcast_to(pixels, (num, height, width, 3)).astype(np.uint8)
  canvas = np.zeros((nrow * (height + 1) + 1, ncol * (width + 1) + 1, 3),
                    np.uint8)
  for n in range(num):
    top = 1 + (n // ncol) * (height + 1)
    left = 1 + (n % ncol) * (width + 1)
    canvas[top:top + height, left:left + width] = pixels[n]
  mpl_image.imsave(path, canvas, format="png")
