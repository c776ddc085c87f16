"""Imports the authors' latent flow prior checkpoints
(``jianwen-xie/Latent-Space-Normalizing-Flow``) into a coopjax workdir:
``netG`` -> :class:`coopjax.models.generator.ReferenceGenerator`, ``netF`` ->
:class:`coopjax.flows.LatentGlow`.

    python -m coopjax.convert.latent_flow --checkpoint=ckpt/ckpt_000115.pth \\
        --config=configs/latent_flow_svhn.py --workdir=runs/lf_svhn_authors
    python -m coopjax.main --config=configs/latent_flow_svhn.py \\
        --workdir=runs/lf_svhn_authors --mode=generate

Read without running pickled code (:mod:`coopjax.convert.torch_file`; torch
is optional); the weights become step 0 of the workdir (EMA = parameters).
"""

from __future__ import annotations

import re
from typing import Any, Dict, Mapping

import numpy as np

from coopjax.convert.common import (conv_transpose_kernel, set_path,
                                    strip_module, sub_state)


def generator_params(state: Mapping[str, np.ndarray]) -> Dict[str, Any]:
  """:class:`~coopjax.models.generator.ReferenceGenerator` params from a
  ``_netG`` state dict (no batch norm)."""
  state = strip_module(state)
  layers = sorted({int(k.split('.')[1]) for k in state
                   if k.startswith('gen.')})
  params: Dict[str, Any] = {}
  for k, v in state.items():
    m = re.fullmatch(r'gen\.(\d+)\.(weight|bias)', k)
    if not m:
      raise ValueError(f'Unexpected _netG array {k!r} (batch norm is not '
                       f'supported).')
    up = layers.index(int(m.group(1)))
    if m.group(2) == 'weight':
      set_path(params, f'up{up}/kernel', conv_transpose_kernel(v))
    else:
      set_path(params, f'up{up}/bias', v)
  return params


def prior_params(state: Mapping[str, np.ndarray]) -> Dict[str, Any]:
  """:class:`~coopjax.flows.LatentGlow` params from a ``_netF`` state dict
  (``fc.b``, unused by the authors' code, and the duplicate ``bias`` names of
  ``b`` are dropped)."""
  params: Dict[str, Any] = {}
  names = {'actnorm.b': 'actnorms_{i}/b', 'actnorm.logs': 'actnorms_{i}/logs',
           'invertible_1x1_conv.w': 'linears_{i}/w',
           'f.fc_1.w': 'couplings_{i}/f/w0',
           'f.fc_1.actnorm.b': 'couplings_{i}/f/actnorm0/b',
           'f.fc_1.actnorm.logs': 'couplings_{i}/f/actnorm0/logs',
           'f.fc_2.w': 'couplings_{i}/f/w1',
           'f.fc_2.actnorm.b': 'couplings_{i}/f/actnorm1/b',
           'f.fc_2.actnorm.logs': 'couplings_{i}/f/actnorm1/logs',
           'f.fc_zeros.w': 'couplings_{i}/f/w_out',
           'f.fc_zeros.b': 'couplings_{i}/f/b_out',
           'f.fc_zeros.logs': 'couplings_{i}/f/logs_out'}
  for k, v in strip_module(state).items():
    m = re.fullmatch(r'revnet2d_s\.0\.revnet2d_step_s\.(\d+)\.(.+)', k)
    if not m:
      raise ValueError(f'Unexpected _netF array {k!r} (one level only).')
    rest = m.group(2)
    if rest.endswith('.bias') or rest in ('f.fc_1.b', 'f.fc_2.b'):
      continue  # 'bias' repeats actnorm 'b'; fc.b is never used
    if rest not in names:
      raise ValueError(f'Unexpected _netF array {k!r}.')
    value = v if rest.endswith('.w') else np.reshape(v, -1)
    set_path(params, names[rest].format(i=int(m.group(1))), value)
  return params


def checkpoint_params(state: Mapping[str, np.ndarray]) -> Dict[str, Any]:
  """``{'gen': ..., 'prior': ...}`` from the authors' checkpoint (``netG.*``,
  ``netF.*``)."""
  state = strip_module(state)
  return {'gen': generator_params(sub_state(state, 'netG.')),
          'prior': prior_params(sub_state(state, 'netF.'))}


def main(argv=None) -> None:
  """``python -m coopjax.convert.latent_flow`` (module docstring)."""
  from coopjax.convert.common import run_import  # pylint: disable=import-outside-toplevel
  run_import(__doc__, lambda state, args: checkpoint_params(state), argv)


if __name__ == '__main__':
  main()
