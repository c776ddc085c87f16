"""coopjax.data.masks: the inpainting masks."""

import numpy as np
import pytest

from coopjax.data import masks


def test_masks_shapes_and_kinds():
  for kind in masks.KINDS:
    m = masks.make(kind, (3, 16, 16, 3), seed=0)
    assert m.shape == (3, 16, 16, 3) and m.dtype == bool
    assert 0.1 < 1 - m.mean() < 0.9
    np.testing.assert_array_equal(m[..., 0], m[..., 2])
  with pytest.raises(ValueError, match='Unknown mask'):
    masks.make('circle', (1, 4, 4, 1))
