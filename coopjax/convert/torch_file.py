"""Reads PyTorch checkpoint files (``torch.save``) into numpy arrays, safely.

    from coopjax.convert import torch_file
    tree = torch_file.load('best.pth.tar')             # nested dicts / lists
    sd = torch_file.load_state_dict('best.pth.tar', 'pi_state_dict')
    sd['temb_map1.weight_orig']                        # np.ndarray

Loading never executes pickled code. With torch installed, files go through
``torch.load(path, map_location='cpu', weights_only=True)``. Without torch
(the default: torch is not a dependency of coopjax) the zip format that
``torch.save`` writes since PyTorch 1.6 is read directly: its ``data.pkl``
is unpickled by an unpickler that resolves only the globals a tensor
container needs (``collections.OrderedDict``, ``torch._utils`` tensor and
parameter rebuilders, the typed storage classes) and refuses every other
global with an :class:`UnsafeCheckpointError`; the tensors' bytes come from
the archive's ``data/<key>`` records. The legacy (pre-1.6, non-zip) format
needs torch.

Tensors become numpy arrays of the same dtype (``bfloat16`` through
``ml_dtypes``); dicts, lists, tuples, numbers and strings stay what they are.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile
from typing import Any, Callable, Dict, Optional

import ml_dtypes
import numpy as np

STORAGE_DTYPES = {
    'FloatStorage': np.float32,
    'DoubleStorage': np.float64,
    'HalfStorage': np.float16,
    'BFloat16Storage': ml_dtypes.bfloat16,
    'LongStorage': np.int64,
    'IntStorage': np.int32,
    'ShortStorage': np.int16,
    'CharStorage': np.int8,
    'ByteStorage': np.uint8,
    'BoolStorage': np.bool_,
}
DDP_PREFIX = 'module.'


class UnsafeCheckpointError(pickle.UnpicklingError):
  """A checkpoint's pickle asks for code outside the tensor-container allowlist."""


class _StorageType:
  """Stands in for ``torch.<X>Storage`` in the persistent ids of a pickle."""

  def __init__(self, name: str):
    self.name = name
    self.dtype = np.dtype(STORAGE_DTYPES[name])


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride,
                    *unused) -> np.ndarray:
  """``torch._utils._rebuild_tensor_v2``: a strided view, copied out."""
  del unused  # requires_grad, backward hooks, metadata
  size, stride = tuple(size), tuple(stride)
  if not size:
    return np.array(storage[offset])
  if any(s == 0 for s in size):
    return np.zeros(size, storage.dtype)
  last = offset + sum((n - 1) * s for n, s in zip(size, stride))
  if offset < 0 or last >= storage.size:
    raise pickle.UnpicklingError(
        f'tensor of size {size}, stride {stride} at offset {offset} runs '
        f'past its storage of {storage.size} elements: corrupt checkpoint.')
  item = storage.itemsize
  view = np.lib.stride_tricks.as_strided(
      storage[offset:], shape=size, strides=[s * item for s in stride],
      writeable=False)
  return np.array(view)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None,
                       *unused):
  """``torch._utils._rebuild_parameter``: a parameter is its data."""
  del requires_grad, backward_hooks, unused
  return data


ALLOWED: Dict[tuple, Callable[..., Any]] = {
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
    **{('torch', name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
  """Unpickles ``data.pkl`` of a torch zip archive, resolving only ALLOWED."""

  def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str,
               byteorder: str, path: str):
    super().__init__(io.BytesIO(data))
    self._archive = archive
    self._prefix = prefix
    self._byteorder = '<' if byteorder == 'little' else '>'
    self._path = path
    self._storages: Dict[str, np.ndarray] = {}

  def find_class(self, module: str, name: str):
    try:
      return ALLOWED[(module, name)]
    except KeyError:
      raise UnsafeCheckpointError(
          f'{self._path}: the checkpoint\'s pickle refers to '
          f'{module}.{name}, which is not a tensor container; refusing to '
          'load it (loading must not run pickled code). If you trust the '
          'file, re-save its tensors as a plain state dict or .npz with '
          'torch.') from None

  def persistent_load(self, pid):
    if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != 'storage'
        or not isinstance(pid[1], _StorageType)):
      raise UnsafeCheckpointError(
          f'{self._path}: unexpected persistent id {pid!r} in the pickle; '
          'only typed tensor storages are read.')
    _, storage_type, key, _, numel = pid
    key = str(key)
    if key not in self._storages:
      record = f'{self._prefix}data/{key}'
      try:
        raw = self._archive.read(record)
      except KeyError:
        raise pickle.UnpicklingError(
            f'{self._path}: storage record {record!r} is missing from the '
            'archive: corrupt or truncated checkpoint.') from None
      dtype = storage_type.dtype.newbyteorder(self._byteorder)
      if len(raw) < numel * dtype.itemsize:
        raise pickle.UnpicklingError(
            f'{self._path}: storage {key} holds {len(raw)} bytes; '
            f'{numel} x {dtype} expected: corrupt checkpoint.')
      array = np.frombuffer(raw, dtype, count=numel)
      self._storages[key] = array.astype(array.dtype.newbyteorder('='))
    return self._storages[key]


def _read_zip(path: str) -> Any:
  with zipfile.ZipFile(path) as archive:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith('data.pkl')
               and n.count('/') == 1]
    if len(pickles) != 1:
      raise ValueError(f'{path}: not a torch.save zip archive (found '
                       f'{len(pickles)} top-level data.pkl records).')
    prefix = pickles[0][:-len('data.pkl')]
    byteorder = 'little'
    if prefix + 'byteorder' in names:
      byteorder = archive.read(prefix + 'byteorder').decode().strip()
    return _RestrictedUnpickler(archive.read(pickles[0]), archive, prefix,
                                byteorder, path).load()


def _torch_to_numpy(tree: Any, torch) -> Any:
  if isinstance(tree, torch.Tensor):
    t = tree.detach().cpu()
    if t.dtype == torch.bfloat16:
      return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy().copy()
  if isinstance(tree, dict):
    return type(tree)((k, _torch_to_numpy(v, torch)) for k, v in tree.items())
  if isinstance(tree, (list, tuple)):
    return type(tree)(_torch_to_numpy(v, torch) for v in tree)
  return tree


def _torch_module():
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return torch


def load(path: str, use_torch: Optional[bool] = None) -> Any:
  """The object ``torch.save`` wrote to ``path``, tensors as numpy arrays.

  Args:
    path: a ``.pt`` / ``.pth`` / ``.pth.tar`` file.
    use_torch: read with ``torch.load(weights_only=True)``; None: when torch
      is importable. False reads the zip format without torch.

  Raises:
    FileNotFoundError: no such file.
    UnsafeCheckpointError: the pickle refers to code other than tensor
      containers (nothing of it is executed).
    ValueError: a legacy (non-zip) file without torch, or not a checkpoint.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'No checkpoint file at {path!r}.')
  torch = _torch_module() if use_torch is not False else None
  if use_torch and torch is None:
    raise ImportError('use_torch=True but torch is not installed.')
  if torch is not None:
    try:
      obj = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
      raise UnsafeCheckpointError(f'{path}: {e}') from e
    return _torch_to_numpy(obj, torch)
  if not zipfile.is_zipfile(path):
    raise ValueError(
        f'{path} is not a zip archive: either the legacy torch format '
        '(before PyTorch 1.6), which needs torch to read (pip install torch, '
        'then retry), or not a torch checkpoint at all.')
  return _read_zip(path)


def flatten(tree: Any, sep: str = '.') -> Dict[str, np.ndarray]:
  """``{'a.b.0': array}`` for every array in nested dicts / lists / tuples.

  Leaves that are not arrays (numbers, strings, None) are dropped; a leading
  DDP ``module.`` is removed from every dict key.
  """
  out: Dict[str, np.ndarray] = {}

  def walk(node, name):
    if isinstance(node, np.ndarray):
      out[name] = node
    elif isinstance(node, dict):
      for k, v in node.items():
        k = strip_ddp(str(k))
        walk(v, f'{name}{sep}{k}' if name else k)
    elif isinstance(node, (list, tuple)):
      for i, v in enumerate(node):
        walk(v, f'{name}{sep}{i}' if name else str(i))

  walk(tree, '')
  return out


def strip_ddp(name: str) -> str:
  """``name`` without DistributedDataParallel's leading ``module.``."""
  return name[len(DDP_PREFIX):] if name.startswith(DDP_PREFIX) else name


def load_state_dict(path: str, key: Optional[str] = None,
                    use_torch: Optional[bool] = None) -> Dict[str, np.ndarray]:
  """A flat ``{name: array}`` state dict from a checkpoint file.

  Args:
    path: the checkpoint file.
    key: the entry holding the state dict (e.g. ``'pi_state_dict'``); None
      for a file that is a state dict itself.
    use_torch: see :func:`load`.

  Raises:
    KeyError: ``key`` is not in the file (the message lists what is).
  """
  tree = load(path, use_torch)
  if key is not None:
    if not isinstance(tree, dict) or key not in tree:
      have = sorted(map(str, tree)) if isinstance(tree, dict) else type(tree)
      raise KeyError(f'{path} has no entry {key!r}; it has {have}.')
    tree = tree[key]
  return flatten(tree)
