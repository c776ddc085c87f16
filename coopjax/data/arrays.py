"""Loading user-provided 2-D point sets from ``.npy`` / ``.npz`` files.

Every failure raises an error that names the file, what was found and what is
expected, so a user can fix the file rather than read a traceback.
"""

import math
import os

import numpy as np

SUPPORTED_EXTENSIONS = (".npy", ".npz")


def _read_array(path: str) -> np.ndarray:
  """Reads a ``.npy`` array, or the ``x`` (or only) array of a ``.npz``."""
  ext = os.path.splitext(path)[1].lower()
  if ext not in SUPPORTED_EXTENSIONS:
    raise ValueError(
        f"Unsupported extension {ext!r} for point file {path!r}; expected "
        f"one of {', '.join(SUPPORTED_EXTENSIONS)} holding an [N, 2] array.")
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"Point file {path!r} does not exist; expected a .npy or .npz file "
        "holding an [N, 2] array (set data.path).")
  try:
    if ext == ".npy":
      return np.load(path, allow_pickle=False)
    with np.load(path, allow_pickle=False) as archive:
      names = list(archive.files)
      if "x" in names:
        return archive["x"]
      if len(names) == 1:
        return archive[names[0]]
  except (OSError, EOFError, ValueError) as e:
    raise ValueError(
        f"Point file {path!r} cannot be read as {ext} ({e}); expected a "
        "numeric [N, 2] array saved with numpy.save / numpy.savez.") from e
  raise ValueError(
      f"Point file {path!r} holds {len(names)} arrays {names} and none is "
      "named 'x'; expected an array named 'x' or a single array.")


def load_point_array(path: str) -> np.ndarray:
  """Loads and validates a user point set.

  Args:
    path: a ``.npy`` file, or a ``.npz`` file whose array is named ``x`` (or
      which holds exactly one array).

  Returns:
    The points, ``[N, 2]`` float32 with ``N >= 2``.

  Raises:
    FileNotFoundError: the file does not exist.
    ValueError: unsupported extension, ambiguous ``.npz`` content, a
      non-numeric dtype, a shape other than ``[N, 2]`` with ``N >= 2``, or
      non-finite values.
  """
  if not path:
    raise ValueError(
        "Dataset 'array' needs data.path: a .npy or .npz file holding an "
        "[N, 2] array.")
  path = os.fspath(path)
  arr = _read_array(path)
  if not (np.issubdtype(arr.dtype, np.integer)
          or np.issubdtype(arr.dtype, np.floating)):
    raise ValueError(
        f"Point file {path!r} holds an array of dtype {arr.dtype}; expected "
        "integers or floats.")
  if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 2:
    raise ValueError(
        f"Point file {path!r} holds an array of shape {tuple(arr.shape)}; "
        "expected shape [N, 2] with N >= 2.")
  arr = arr.astype(np.float32)
  bad = int(np.sum(~np.isfinite(arr)))
  if bad:
    raise ValueError(
        f"Point file {path!r} holds {bad} non-finite values (NaN or inf); "
        "expected finite coordinates.")
  return arr


def covering_box(points: np.ndarray) -> float:
  """Half-width of a square that holds ``points`` with a 10% margin.

  ``1.1 * max |value|`` rounded up to a multiple of half its leading decade
  (e.g. 4.07 -> 4.5, 0.0123 -> 0.015, 230 -> 250); 1.0 if all points are 0.

  Args:
    points: ``[N, 2]`` finite points.

  Returns:
    The half-width ``box`` of ``[-box, box]^2``.
  """
  raw = 1.1 * float(np.max(np.abs(points)))
  if raw == 0.0:
    return 1.0
  step = 0.5 * 10.0 ** math.floor(math.log10(raw))
  return float(step * math.ceil(raw / step - 1e-9))
