"""Data sources, one module per kind of data; this package only routes names.

- ``toy2d``: 2-D point densities (``PointDataset``, ``load_points``), with user
  point files read by ``arrays``.
- ``images``: image sets in host memory (``ImageDataset``): the embedded
  scikit-learn digits, user arrays and, through ``tfds_source``, TensorFlow
  Datasets read offline. Nothing here imports TensorFlow at import time.
- ``batching``: which examples step ``n`` trains on, on which process.

Every dataset offers ``kind``, ``name``, ``example_shape``, ``num_classes`` and
``batch(step, batch_size, seed, process_index, process_count) -> {'x': ...,
['label': ...]}``.
"""

from coopjax.config import common
from coopjax.data import images
from coopjax.data.batching import batch_at
from coopjax.data.images import ImageDataset
from coopjax.data.toy2d import PointDataset
from coopjax.data.toy2d import known_datasets
from coopjax.data.toy2d import load_points

KINDS = {"points": known_datasets(),
         "images": tuple(n for n in images.known_datasets() if n != "array")}


def kind_of(name: str, kind_hint: str = "") -> str:
  """Returns the kind of data (a key of ``KINDS``) the dataset ``name`` is.

  ``'array'`` (a user file) is points unless ``kind_hint == 'images'``.

  Raises:
    ValueError: ``name`` is in no registered kind; the message lists them all.
  """
  if name == "array":
    return "images" if kind_hint == "images" else "points"
  for kind, names in KINDS.items():
    if name in names:
      return kind
  known = "; ".join(f"{k}: {', '.join(v)}" for k, v in KINDS.items())
  raise ValueError(f"Unknown dataset {name!r}; known: {known}")


def load(data_config, seed: int, process_index: int = 0,
         process_count: int = 1):
  """The dataset named by ``data_config.name`` (``data_config.kind`` picks
  images for ``name='array'``).

  ``data_config`` is a ``config.data`` section; fields it leaves out take
  their defaults from :func:`coopjax.config.common.data`.
  """
  data_config = common.complete_data(data_config)
  kind = kind_of(data_config.name, data_config.kind)
  if kind == "points":
    return load_points(data_config, seed)
  if data_config.name in images.TFDS:
    from coopjax.data import tfds_source  # pylint: disable=g-import-not-at-top
    dataset = tfds_source.load(data_config, process_index, process_count)
  else:
    dataset = images.load_embedded(data_config)
  return images.with_missing_pixels(dataset,
                                    float(data_config.missing_fraction))


__all__ = ["KINDS", "ImageDataset", "PointDataset", "batch_at", "kind_of",
           "known_datasets", "load", "load_points"]
