"""Figures written straight to PNG files, headless.

Figures are built with ``matplotlib.figure.Figure`` on an explicit Agg canvas
(``FigureCanvasAgg``): no display is ever opened, pyplot's global figure list
is never used (nothing leaks in a long training run), and the global backend
of a caller (e.g. a notebook) is left untouched. Orientation: 2-D arrays on a
grid ``[i, j] = (x_i, y_j)`` (``coopjax.metrics.fine_grid``) are drawn with x
horizontal and y vertical, y up.
"""

import math
import textwrap
from typing import Optional, Sequence

import numpy as np
from matplotlib import image as mpl_image
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PANEL_INCHES = 3.0
DPI = 100


def _new_figure(ncols: int, nrows: int, layout="constrained") -> Figure:
  fig = Figure(figsize=(PANEL_INCHES * ncols, PANEL_INCHES * nrows), dpi=DPI,
               layout=layout)
  FigureCanvasAgg(fig)
  return fig


def _suptitle(fig: Figure, title: str, fontsize: float = 10) -> None:
  """A figure title wrapped to the figure's width."""
  chars = max(20, int(fig.get_figwidth() * 72 / (0.55 * fontsize)))
  lines = [textwrap.fill(part, chars) for part in title.split("\n")]
  fig.suptitle("\n".join(lines), fontsize=fontsize)


def _save(fig: Figure, path) -> None:
  fig.savefig(path, dpi=DPI, format="png")


def _square_axes(ax, box: float) -> None:
  ax.set_xlim(-box, box)
  ax.set_ylim(-box, box)
  ax.set_aspect("equal")
  ticks = [-box, -box / 2, 0.0, box / 2, box]  # fixed: cheap to lay out
  ax.set_xticks(ticks, [f"{t:g}" for t in ticks], fontsize=7)
  ax.set_yticks(ticks, [f"{t:g}" for t in ticks], fontsize=7)


def _show_grid(ax, values: np.ndarray, extent, box: float,
               colorbar_label: str = "") -> None:
  """Draws ``values[i, j]`` at (x_i, y_j): transposed, origin lower-left,
  with a colour bar saying what the colour means."""
  image = ax.imshow(np.ma.masked_invalid(values.T), origin="lower",
                    extent=extent, cmap="viridis", interpolation="nearest")
  _square_axes(ax, box)
  if colorbar_label:
    # An inset colour bar: no layout engine needed (which is slow).
    bar = ax.figure.colorbar(image, cax=ax.inset_axes([1.04, 0.0, 0.06, 1.0]),
                             ticks=ticker.MaxNLocator(4))
    bar.set_label(colorbar_label, fontsize=7)
    bar.ax.tick_params(labelsize=6)


def _scatter(ax, points: np.ndarray, box: float) -> None:
  ax.scatter(points[:, 0], points[:, 1], s=1.0, c="tab:blue", linewidths=0,
             rasterized=True)
  _square_axes(ax, box)


def panel_axes(fig: Figure) -> list:
  """The panels of a figure of this module, without its colour bars."""
  return [a for a in fig.axes if a.get_label() != "<colorbar>"]


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


def _data_log_density(points: np.ndarray, grid: np.ndarray) -> np.ndarray:
  """Log of the data's histogram on the cells of ``grid`` (-inf: empty)."""
  left, right, bottom, top = _grid_extent(grid)
  counts, _, _ = np.histogram2d(
      points[:, 0], points[:, 1],
      bins=[np.linspace(left, right, grid.shape[0] + 1),
            np.linspace(bottom, top, grid.shape[1] + 1)])
  with np.errstate(divide="ignore"):
    return np.log(counts / max(counts.sum(), 1.0))


def _levels_figure(log_densities, samples, grid, box, titles, data=None,
                   title="") -> Figure:
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
  titles = list(titles)
  if data is not None:
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != 2:
      raise ValueError(f"plot_levels needs data [M, 2], got {data.shape}")
    shown = data[:samples.shape[1]]
    logds = np.concatenate([_data_log_density(data, grid)[None], logds])
    samples = np.concatenate([shown[None], samples[:, :len(shown)]])
    titles = ["data (truth)"] + titles
  extent = _grid_extent(grid)
  cols = len(titles)
  fig = _new_figure(cols, 3, layout=None)
  width = PANEL_INCHES * cols  # margins in inches: labels, colour bars
  fig.subplots_adjust(left=0.75 / width, right=1 - 0.6 / width, bottom=0.07,
                      top=0.9, wspace=0.6, hspace=0.15)
  # Shared axes: tick labels only on the outer panels (also much faster).
  axes = fig.subplots(3, cols, squeeze=False, sharex=True, sharey=True)
  for t in range(cols):
    _show_grid(axes[0, t], logds[t], extent, box, "log density")
    _show_grid(axes[1, t], _normalised_density(logds[t]), extent, box,
               "probability per cell")
    _scatter(axes[2, t], samples[t], box)
    axes[0, t].set_title(str(titles[t]), fontsize=9)
    axes[2, t].set_xlabel("x", fontsize=7)
  for row, label in enumerate(("log density (energy)\ny",
                               "density (normalised)\ny",
                               "points\ny")):
    axes[row, 0].set_ylabel(label, fontsize=8)
  if title:
    _suptitle(fig, title)
  return fig


def plot_levels(path, log_densities: np.ndarray, samples: np.ndarray,
                grid: np.ndarray, box: float,
                titles: Optional[Sequence[str]] = None,
                data: Optional[np.ndarray] = None, title: str = "") -> None:
  """Writes the per-noise-level figure of the CDRL 2-D toy.

  One column per level, in the order given (highest noise first by
  convention), after a first column of the true ``data`` if given; rows: the
  log density (energy) as an image, the density ``exp(logd - max)``
  normalised to sum 1 as an image (each with a colour bar), and the samples
  (data points) as a scatter. Every panel spans ``[-box, box]^2`` with its
  axes, x horizontal, y up. ``PANEL_INCHES`` square panels at ``DPI``:
  ``3 * 300`` by ``columns * 300`` px.

  Args:
    path: output PNG path.
    log_densities: ``[T, G, G]`` log densities on ``grid`` (``-inf`` allowed).
    samples: ``[T, N, 2]`` samples per level.
    grid: ``[G, G, 2]`` cell centres, ``[i, j] = (x_i, y_j)`` (``fine_grid``).
    box: half-width of the plotted square.
    titles: ``T`` column titles; default ``'level t'``.
    data: optional ``[M, 2]`` true data points: a first column with their
      histogram on the grid's cells and (up to N of) them.
    title: the figure's title (run, step, figures).

  Raises:
    ValueError: inconsistent shapes or number of titles.
  """
  _save(_levels_figure(log_densities, samples, grid, box, titles, data,
                       title), path)


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
    _show_grid(axes[1], probs, extent, box, "probability per bin")
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


HIDDEN_RGB = (255, 0, 255)  # magenta: pixels that are NaN (hidden, missing)


def image_canvas(images: np.ndarray, ncol: Optional[int] = None,
                 zoom: int = 1) -> np.ndarray:
  """The uint8 RGB canvas of :func:`save_image_grid` (see there)."""
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
  hidden = np.isnan(images).any(-1)
  pixels = np.round((np.clip(np.nan_to_num(images, nan=-1.0), -1.0, 1.0)
                     + 1.0) * 127.5)
  pixels = np.array(np.broadcast_to(pixels, (num, height, width, 3)),
                    np.uint8)
  pixels[hidden] = HIDDEN_RGB
  canvas = np.zeros((nrow * (height + 1) + 1, ncol * (width + 1) + 1, 3),
                    np.uint8)
  for n in range(num):
    top = 1 + (n // ncol) * (height + 1)
    left = 1 + (n % ncol) * (width + 1)
    canvas[top:top + height, left:left + width] = pixels[n]
  return canvas


def save_image_grid(path, images: np.ndarray, ncol: Optional[int] = None,
                    zoom: int = 1) -> None:
  """Writes images as one PNG grid, pixel for pixel, with 1-px black padding.

  Images fill the grid row by row; unused cells stay black; NaN pixels
  (hidden or missing) are drawn magenta (:data:`HIDDEN_RGB`). The PNG is
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
  mpl_image.imsave(path, image_canvas(images, ncol, zoom), format="png")


def save_labelled_grid(path, images: np.ndarray, ncol: int, zoom: int = 1,
                       title: str = "",
                       col_labels: Optional[Sequence[str]] = None,
                       row_labels: Optional[Sequence[str]] = None,
                       note: str = "") -> None:
  """Writes the grid of :func:`save_image_grid` as a figure with a title,
  a label over each column and beside each row, and a note underneath.

  Args:
    path: output PNG path.
    images: ``[N, H, W, C]`` in ``[-1, 1]`` (NaN: hidden, drawn magenta).
    ncol: images per row (``col_labels`` has one label per column).
    zoom: pixel zoom of each image.
    title: the figure's title (what, which step, the metric).
    col_labels: ``ncol`` labels drawn above the columns.
    row_labels: one label per row, drawn on the left.
    note: a line under the grid (e.g. what magenta means).

  Raises:
    ValueError: bad shapes, or label counts that do not match.
  """
  _save(_labelled_grid_figure(images, ncol, zoom, title, col_labels,
                              row_labels, note), path)


def _labelled_grid_figure(images, ncol, zoom, title, col_labels, row_labels,
                          note) -> Figure:
  """The ``save_labelled_grid`` figure (see there), not yet written."""
  canvas = image_canvas(images, ncol, zoom)
  cell_h = (canvas.shape[0] - 1) // math.ceil(len(images) / ncol)
  cell_w = (canvas.shape[1] - 1) // ncol
  if col_labels is not None and len(col_labels) != ncol:
    raise ValueError(f"save_labelled_grid got {len(col_labels)} column "
                     f"labels for {ncol} columns")
  nrow = (canvas.shape[0] - 1) // cell_h
  if row_labels is not None and len(row_labels) != nrow:
    raise ValueError(f"save_labelled_grid got {len(row_labels)} row labels "
                     f"for {nrow} rows")
  dpi = DPI
  width = canvas.shape[1] / dpi + (0.9 if row_labels is not None else 0.2)
  height = canvas.shape[0] / dpi + 0.5 + (0.5 if col_labels else 0.0) + (
      0.3 if note else 0.0)
  height += 0.15 * title.count("\n") + (0.3 if len(title) > 60 else 0.0)
  fig = Figure(figsize=(max(width, 4.0), height), dpi=dpi,
               layout="constrained")
  FigureCanvasAgg(fig)
  ax = fig.subplots()
  ax.imshow(canvas, interpolation="nearest")
  fontsize = 7 if cell_w < 60 else 9
  if col_labels is not None:
    ax.xaxis.tick_top()
    ax.set_xticks([1 + cell_w * (j + 0.5) for j in range(ncol)])
    ax.set_xticklabels(list(col_labels), fontsize=fontsize)
  else:
    ax.set_xticks([])
  if row_labels is not None:
    ax.set_yticks([1 + cell_h * (i + 0.5) for i in range(nrow)])
    ax.set_yticklabels(list(row_labels), fontsize=fontsize)
  else:
    ax.set_yticks([])
  ax.tick_params(length=0)
  for side in ax.spines.values():
    side.set_visible(False)
  if title:
    _suptitle(fig, title, 9)
  if note:
    ax.set_xlabel(note, fontsize=8)
  return fig
