"""coopjax.data.masks: the inpainting masks."""

import numpy as np
import pytest

from coopjax.data import masks


def test_masks_shapes_and_kinds():
  for kind in masks.KINDS:
    m = masks.make(kind, (3, 16, 16, 3), seed=0)
    assert m.shape == (3, 16, 16, 3) and m.dtype == bool
    np.testing.assert_array_equal(m[..., 0], m[..., 2])
  # the fractions the module docstring states (the regions themselves:
  # tests/test_properties.py)
  assert 1 - masks.make('square', (3, 16, 16, 3)).mean() == 0.25
  assert 1 - masks.make('half', (3, 16, 16, 3)).mean() == 0.5
  for size in (16, 32):
    hidden = 1 - masks.make('free', (100, size, size, 1), 1).mean((1, 2, 3))
    # "roughly a quarter to a half": 0.41 on average (per mask 0.10-0.73)
    assert 0.25 < hidden.mean() < 0.5
    assert np.all((hidden > 0) & (hidden < 1))
    assert len(np.unique(hidden)) > 30  # each example its own strokes
  with pytest.raises(ValueError, match='Unknown mask'):
    masks.make('circle', (1, 4, 4, 1))
