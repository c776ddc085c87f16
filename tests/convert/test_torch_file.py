"""The torch checkpoint reader: values, dtypes, views, DDP names, and refusal
of pickled code. The fixture was written by tools/make_torch_file_fixture.py
with torch; these tests read it without torch."""

import io
import os
import pickle
import zipfile

import ml_dtypes
import numpy as np
import pytest

from coopjax.convert import torch_file
from helpers import REPO

SMALL = os.path.join(REPO, 'tests', 'fixtures', 'torch_file', 'small.pt')


def arange(*shape):
  return np.arange(np.prod(shape), dtype=np.float64).reshape(shape)


@pytest.fixture(scope='module')
def tree():
  return torch_file.load(SMALL, use_torch=False)


def test_state_dict_names_lose_the_ddp_prefix_and_keep_the_sn_buffers():
  sd = torch_file.load_state_dict(SMALL, 'pi_state_dict', use_torch=False)
  assert list(sd) == ['0.bias', '0.weight_orig', '0.weight_u', '0.weight_v']
  np.testing.assert_array_equal(sd['0.weight_orig'],
                                (arange(2, 3) / 10).astype(np.float32))
  np.testing.assert_array_equal(sd['0.bias'], np.float32([0.5, -0.5]))
  np.testing.assert_array_equal(sd['0.weight_u'], np.float32([0.6, 0.8]))
  np.testing.assert_array_equal(sd['0.weight_v'], np.float32([0, 0.6, 0.8]))
  assert all(v.dtype == np.float32 for v in sd.values())


def test_every_dtype_and_scalars(tree):
  d = tree['dtypes']
  expected = {'f64': np.float64, 'f16': np.float16, 'bf16': ml_dtypes.bfloat16,
              'i64': np.int64, 'i32': np.int32, 'u8': np.uint8,
              'bool': np.bool_}
  for name, dtype in expected.items():
    assert d[name].dtype == np.dtype(dtype), name
  np.testing.assert_array_equal(d['f64'], [0, 1, 2])
  np.testing.assert_array_equal(d['bf16'].astype(np.float32), [0, 0.5, 1])
  np.testing.assert_array_equal(d['i64'], [-1, 0, 1])
  np.testing.assert_array_equal(d['bool'], [True, False, True])
  assert d['scalar'].shape == () and float(d['scalar']) == 7.5


def test_views_are_read_through_their_strides(tree):
  big = arange(4, 5)
  np.testing.assert_array_equal(tree['views']['transposed'], big.T)
  np.testing.assert_array_equal(tree['views']['sliced'], big[1:3, 2:])
  assert tree['views']['empty'].shape == (0, 3)


def test_python_containers_and_numbers_survive(tree):
  assert tree['ema']['decay'] == 0.9999 and tree['ema']['num_updates'] == 3
  shadow = tree['ema']['shadow_params']
  assert isinstance(shadow, list)
  np.testing.assert_array_equal(shadow[1], arange(2, 3) - 1)
  groups = tree['optimizer']['param_groups']
  assert groups[0]['betas'] == (0.9, 0.999) and groups[0]['params'] == [0, 1]
  flat = torch_file.flatten(tree['ema'])
  assert sorted(flat) == ['shadow_params.0', 'shadow_params.1']


def _torch_like_zip(path, payload: bytes):
  with zipfile.ZipFile(path, 'w') as z:
    z.writestr('archive/data.pkl', payload)
    z.writestr('archive/byteorder', 'little')
    z.writestr('archive/version', '3\n')


class _Evil:
  def __init__(self, target):
    self.target = target

  def __reduce__(self):
    return (os.mkdir, (self.target,))


def test_a_pickled_call_is_refused_and_not_run(tmp_path):
  target = str(tmp_path / 'pwned')
  path = tmp_path / 'evil.pt'
  _torch_like_zip(path, pickle.dumps({'w': _Evil(target)}, protocol=2))
  with pytest.raises(torch_file.UnsafeCheckpointError, match='mkdir'):
    torch_file.load(str(path), use_torch=False)
  assert not os.path.exists(target)


def test_a_foreign_persistent_id_is_refused(tmp_path):

  class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
      return ('storage', 'not a storage type', '0', 'cpu', 1) if (
          obj == 'x') else None

  buf = io.BytesIO()
  Pickler(buf, protocol=2).dump({'w': 'x'})
  path = tmp_path / 'odd.pt'
  _torch_like_zip(path, buf.getvalue())
  with pytest.raises(torch_file.UnsafeCheckpointError, match='persistent id'):
    torch_file.load(str(path), use_torch=False)


def test_bad_files_get_one_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError):
    torch_file.load(str(tmp_path / 'missing.pt'))
  legacy = tmp_path / 'legacy.pt'
  legacy.write_bytes(b'\x80\x02\x8a\x0alegacy torch file')
  with pytest.raises(ValueError, match='legacy torch format'):
    torch_file.load(str(legacy), use_torch=False)
  with pytest.raises(KeyError, match="no entry 'p_state_dict'"):
    torch_file.load_state_dict(SMALL, 'p_state_dict', use_torch=False)


def test_torch_load_gives_the_same_arrays(tree):
  pytest.importorskip('torch')
  with_torch = torch_file.flatten(torch_file.load(SMALL, use_torch=True))
  without = torch_file.flatten(tree)
  assert sorted(with_torch) == sorted(without)
  for k, v in without.items():
    assert with_torch[k].dtype == v.dtype, k
    np.testing.assert_array_equal(with_torch[k], v, err_msg=k)
