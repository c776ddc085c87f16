"""Converts pytorch-fid's Inception weights to the .npz coopjax loads.

    python tools/convert_inception.py pt_inception-2015-12-05-6726825d.pth \
        inception_fid.npz

The input is the published torch ``state_dict`` of pytorch-fid's
``fid_inception_v3`` (see docs/fid.md for where to get it). Reading a ``.pth``
needs ``torch``; without it, dump the state dict to an ``.npz`` of numpy arrays
(same key names) on a machine that has torch and convert that here:

    python -c "import torch, numpy as np; sd = torch.load('pt_inception-2015-12-05-6726825d.pth', map_location='cpu'); np.savez('pt_inception_sd.npz', **{k: v.numpy() for k, v in sd.items()})"
    python tools/convert_inception.py pt_inception_sd.npz inception_fid.npz

Name mapping (``X`` a dotted module path such as ``Mixed_6b.branch7x7_2``):

- ``X.conv.weight`` ``[out, in, kh, kw]`` -> ``params/X/conv/kernel``
  ``[kh, kw, in, out]``;
- ``X.bn.weight`` / ``.bias`` -> ``params/X/bn/scale`` / ``bias``;
  ``X.bn.running_mean`` / ``running_var`` -> ``batch_stats/X/bn/mean`` /
  ``var``; ``num_batches_tracked`` is dropped;
- ``fc.weight`` ``[1008, 2048]`` -> ``params/fc/kernel`` ``[2048, 1008]``,
  ``fc.bias`` -> ``params/fc/bias``; ``AuxLogits.*`` (if any) is dropped.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from typing import Dict, Mapping

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..'))
from coopjax.metrics import inception  # pylint: disable=wrong-import-position

DROPPED = ('num_batches_tracked',)
BN = {'weight': ('params', 'scale'), 'bias': ('params', 'bias'),
      'running_mean': ('batch_stats', 'mean'),
      'running_var': ('batch_stats', 'var')}


def flax_name(torch_name: str):
  """``(flax key, transpose axes or None)`` for a torch key, or None to drop."""
  parts = torch_name.split('.')
  if parts[0] == 'AuxLogits' or parts[-1] in DROPPED:
    return None
  *path, leaf = parts
  if path == ['fc']:
    return ('params/fc/kernel', (1, 0)) if leaf == 'weight' else (
        'params/fc/bias', None)
  if path[-1] == 'conv' and leaf == 'weight':
    return 'params/' + '/'.join(path) + '/kernel', (2, 3, 1, 0)
  if path[-1] == 'bn' and leaf in BN:
    collection, name = BN[leaf]
    return f'{collection}/{"/".join(path)}/{name}', None
  raise ValueError(f'Unknown key {torch_name!r} in the Inception state dict; '
                   'expected the pytorch-fid FID Inception (fid_inception_v3) '
                   'weights.')


def convert_state_dict(state_dict: Mapping[str, np.ndarray]
                       ) -> Dict[str, np.ndarray]:
  """Torch-named arrays -> the flattened Flax variables, checked.

  Args:
    state_dict: key -> numpy array (or anything ``np.asarray`` takes).

  Returns:
    ``{'params/...': float32 array, 'batch_stats/...': ...}`` matching
    :class:`coopjax.metrics.inception.InceptionV3`.

  Raises:
    ValueError: an unknown key, or the result misses keys / has wrong shapes.
  """
  out = {}
  for key, value in state_dict.items():
    target = flax_name(key)
    if target is None:
      continue
    name, axes = target
    array = np.asarray(value, np.float32)
    out[name] = np.ascontiguousarray(array.transpose(axes) if axes else array)
  inception.check_weights(out, '<converted state dict>')
  return out


def to_state_dict(flat: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """Inverse of :func:`convert_state_dict` (less ``num_batches_tracked``)."""
  inverse = {v: k for k, v in BN.items()}
  out = {}
  for name, value in flat.items():
    collection, *path, leaf = name.split('/')
    if path == ['fc']:
      out['fc.' + ('weight' if leaf == 'kernel' else 'bias')] = (
          value.T if leaf == 'kernel' else value)
    elif leaf == 'kernel':
      out['.'.join(path) + '.weight'] = value.transpose(3, 2, 0, 1)
    else:
      out['.'.join(path) + '.' + inverse[(collection, leaf)]] = value
  return out


def read_state_dict(path: str) -> Dict[str, np.ndarray]:
  """Reads a torch ``.pth`` (needs torch) or an ``.npz`` of the same keys."""
  if path.endswith('.npz'):
    with np.load(path, allow_pickle=False) as f:
      return {k: f[k] for k in f.files}
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise SystemExit(
        f'Reading {path!r} needs torch, which is not installed here. Either '
        '"pip install torch" (the CPU build is enough) and run this again, or '
        'dump the state dict to an .npz on a machine with torch and convert '
        'that (see this script\'s docstring or docs/fid.md).') from e
  state = torch.load(path, map_location='cpu')
  return {k: v.detach().cpu().numpy() for k, v in state.items()}


def check_hash(path: str) -> None:
  """Warns when a ``*-<hex>.pth`` name's sha256 prefix does not match."""
  match = re.search(r'-([0-9a-f]{8,})\.pth$', os.path.basename(path))
  if not match:
    return
  with open(path, 'rb') as f:
    digest = hashlib.sha256(f.read()).hexdigest()
  if not digest.startswith(match.group(1)):
    print(f'WARNING: sha256 of {path} is {digest[:16]}..., the name says '
          f'{match.group(1)}: the download may be corrupt.', file=sys.stderr)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('source', help='pt_inception-2015-12-05-*.pth, or an '
                      '.npz of its state dict')
  parser.add_argument('target', help='output .npz (config.eval.inception_path)')
  args = parser.parse_args(argv)
  check_hash(args.source)
  flat = convert_state_dict(read_state_dict(args.source))
  np.savez(args.target, **flat)
  print(f'wrote {len(flat)} arrays to {args.target}; set '
        f'--config.eval.inception_path={os.path.abspath(args.target)}')


if __name__ == '__main__':
  main()
