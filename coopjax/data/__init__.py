"""Data sources, one module per kind of data; this package only routes names.

- ``toy2d``: 2-D point densities (``PointDataset``, ``load_points``,
  ``batch_at``), with user point files read by ``arrays``.
- Image pipelines (tfds) will get their own module; nothing here may import
  TensorFlow at package import time.
"""

from coopjax.data.toy2d import PointDataset
from coopjax.data.toy2d import batch_at
from coopjax.data.toy2d import known_datasets
from coopjax.data.toy2d import load_points

KINDS = {"points": known_datasets()}


def kind_of(name: str) -> str:
  """Returns the kind of data (a key of ``KINDS``) the dataset ``name`` is.

  Args:
    name: a dataset name such as ``'checkerboard'``.

  Raises:
    ValueError: ``name`` is in no registered kind; the message lists them all.
  """
  for kind, names in KINDS.items():
    if name in names:
      return kind
  known = ", ".join(f"{k}: {', '.join(v)}" for k, v in KINDS.items())
  raise ValueError(f"Unknown dataset {name!r}; known: {known}")


__all__ = ["KINDS", "PointDataset", "batch_at", "kind_of", "known_datasets",
           "load_points"]
