"""coopjax.data.arrays: user point sets from .npy / .npz files."""

import ml_collections
import numpy as np
import pytest

from coopjax import data
from coopjax.data import arrays


def _config(**kwargs):
  base = dict(name="checkerboard", batch_size=100)
  base.update(kwargs)
  return ml_collections.ConfigDict(base)


def test_array_npy_and_npz(tmp_path):
  pts = np.array([[3.7, 0.0], [-1.0, 2.0], [0.5, -0.5]], np.float64)
  np.save(tmp_path / "p.npy", pts)
  np.savez(tmp_path / "one.npz", anything=pts)
  np.savez(tmp_path / "many.npz", x=pts, y=np.zeros(3))
  for name in ("p.npy", "one.npz", "many.npz"):
    ds = data.load_points(
        _config(name="array", path=str(tmp_path / name), batch_size=2), 0)
    np.testing.assert_array_equal(ds.points, pts.astype(np.float32))
    assert ds.points.dtype == np.float32
    assert (ds.box, ds.bins) == (4.5, 34)  # 1.1 * 3.7 = 4.07 -> 4.5
    probs = ds.true_probs()
    np.testing.assert_allclose(probs.sum(), 1.0)
    assert set(np.unique(probs)) == {0.0, 1 / 3}


def test_covering_box_rounding():
  for value, box in [(3.7, 4.5), (0.0123, 0.015), (230.0, 300.0), (1.0, 1.5),
                     (0.0, 1.0)]:
    assert arrays.covering_box(np.array([[value, 0.0], [0.0, 0.0]])) == (
        pytest.approx(box))


def _write(tmp_path, name, arr=None, **arrays_kw):
  path = tmp_path / name
  if name.endswith(".npz"):
    np.savez(path, **arrays_kw)
  elif name.endswith(".npy"):
    np.save(path, arr)
  else:
    path.write_text("1 2\n3 4\n")
  return str(path)


@pytest.mark.parametrize("name,arr,kw,error,words", [
    ("missing.npy", None, None, FileNotFoundError, "does not exist"),
    ("p.txt", None, {}, ValueError, "Unsupported extension '.txt'"),
    ("two.npz", None, dict(a=np.zeros((3, 2)), b=np.zeros((3, 2))),
     ValueError, r"2 arrays \['a', 'b'\] and none is named 'x'"),
    ("three.npy", np.zeros((5, 3)), {}, ValueError, r"shape \(5, 3\)"),
    ("one.npy", np.zeros((1, 2)), {}, ValueError, "N >= 2"),
    ("flat.npy", np.zeros(10), {}, ValueError, r"shape \(10,\); expected"),
    ("nan.npy", np.array([[0.0, np.nan], [np.inf, 1.0]]), {}, ValueError,
     "2 non-finite values"),
    ("str.npy", np.array([["a", "b"], ["c", "d"]]), {}, ValueError, "dtype"),
])
def test_array_errors(tmp_path, name, arr, kw, error, words):
  path = str(tmp_path / name) if kw is None else _write(tmp_path, name, arr,
                                                        **kw)
  with pytest.raises(error, match=words) as err:
    data.load_points(_config(name="array", path=path), seed=0)
  assert path in str(err.value)


def test_array_needs_path():
  with pytest.raises(ValueError, match="needs data.path"):
    data.load_points(_config(name="array"), seed=0)
