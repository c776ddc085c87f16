"""Imports the authors' CoopFlow checkpoints (``AlvinZhuyx/CoopFlow``) into a
coopjax workdir: EBM_res -> :class:`coopjax.models.EBMRes`, Flow++ ->
:class:`coopjax.flows.flowpp.FlowPlusPlus`.

    python -m coopjax.convert.coopflow --checkpoint=ckpt/cifar10.pth.tar \\
        --config=configs/coopflow_cifar10.py --workdir=runs/cf_cifar10_authors
    python -m coopjax.main --config=configs/coopflow_cifar10.py \\
        --workdir=runs/cf_cifar10_authors --mode=sample

The checkpoint is read without running pickled code
(:mod:`coopjax.convert.torch_file`; torch is optional). The checkpoint's
``ebm_net`` and ``flow_net`` state dicts (or a pretrained flow's ``net``,
``--flow_only``) become step 0 of the workdir (EMA = parameters); the
config's networks must have the checkpoint's sizes; keep
``model.reference_sampler`` on (the default: proposals ``2 sigmoid(y) - 1``,
as the authors' EBM was trained with them).
"""

from __future__ import annotations

import re
from typing import Any, Dict, Mapping

import numpy as np

from coopjax.convert.common import (conv_kernel, set_path, stack_blocks,
                                    strip_module, sub_state)


def ebm_res_params(state: Mapping[str, np.ndarray]) -> Dict[str, Any]:
  """:class:`coopjax.models.EBMRes` params from an ``EBM_res`` state dict."""
  state = strip_module(state)
  convs = sorted({int(k.split('.')[1]) for k in state if k.startswith('f.')})
  params: Dict[str, Any] = {}
  head = convs[-1]
  for k, v in state.items():
    m = re.fullmatch(r'f\.(\d+)\.(?:(conv1|conv2|res)\.)?(weight|bias)', k)
    if not m:
      raise ValueError(f'Unexpected EBM_res array {k!r}.')
    idx, sub, kind = int(m.group(1)), m.group(2), m.group(3)
    if idx == 0:
      layer = 'conv_in'
    elif idx == head:
      layer = 'head'
    else:
      layer = f'block{idx - 2}/{sub}'
    set_path(params, f'{layer}/{"kernel" if kind == "weight" else "bias"}',
             conv_kernel(v) if kind == 'weight' else v)
  return params


def _wn(prefix: str, rest: str, v: np.ndarray, dense: bool = False):
  """A weight-normalised layer's array: (path, value)."""
  name = {'weight_v': 'v', 'weight_g': 'g', 'bias': 'bias'}[rest]
  if name == 'v':
    v = v.T if dense else conv_kernel(v)
  elif name == 'g':
    v = v.reshape(-1)
  return f'{prefix}/{name}', v


def _gated(prefix: str, rest: str, v):
  m = re.fullmatch(r'(conv|gate|aux_conv)\.conv\.(\w+)', rest)
  if not m:
    raise ValueError(f'Unexpected gated-conv array {prefix}.{rest}.')
  return _wn(f'{prefix}/{m.group(1)}', m.group(2), v)


def _coupling_net(prefix: str, rest: str, v):
  m = re.fullmatch(r'(in_conv|out_conv)\.conv\.(\w+)', rest)
  if m:
    return _wn(f'{prefix}/{m.group(1)}', m.group(2), v)
  m = re.fullmatch(r'rescale\.weight_(g|v)', rest)
  if m:
    return f'{prefix}/rescale_{m.group(1)}', v.reshape(-1)
  m = re.fullmatch(r'mid_convs\.(\d+)\.(.+)', rest)
  if not m:
    raise ValueError(f'Unexpected coupling-network array {rest!r}.')
  # blocks are stacked on a leading axis (nn.scan) by _stack_blocks
  block, rest = f'{prefix}/mid_convs#{m.group(1)}', m.group(2)
  if rest.startswith('conv.'):
    return _gated(f'{block}/conv', rest[len('conv.'):], v)
  m = re.fullmatch(r'(norm_1|norm_2)\.(weight|bias)', rest)
  if m:
    return (f'{block}/{m.group(1)}/'
            f'{"scale" if m.group(2) == "weight" else "bias"}'), v
  m = re.fullmatch(r'attn\.(in_proj|gate)\.(\w+)', rest)
  if m:
    return _wn(f'{block}/attn/{m.group(1)}', m.group(2), v, dense=True)
  raise ValueError(f'Unexpected coupling-network array {rest!r}.')


def _step(step: str, m: int, rest: str, v):
  if m == 0:
    return f'{step}/actnorm/{rest}', v.reshape(-1)
  if m == 1:
    return f'{step}/invconv/{rest}', v
  if m == 2 and rest.startswith('nn.'):
    return _coupling_net(f'{step}/coupling/nn', rest[3:], v)
  raise ValueError(f'Unexpected flow-step array {step}: {m}.{rest}.')


def flowpp_params(state: Mapping[str, np.ndarray]) -> Dict[str, Any]:
  """:class:`~coopjax.flows.flowpp.FlowPlusPlus` params from a
  ``FlowPlusPlus`` state dict (buffers ``bounds`` and ``is_initialized``
  dropped)."""
  params: Dict[str, Any] = {}
  for k, v in strip_module(state).items():
    if k == 'bounds' or k.endswith('is_initialized'):
      continue
    m = re.fullmatch(r'flows\.((?:next\.)*)(channels|checkers)\.(\d+)\.(.+)',
                     k)
    if m:
      level = m.group(1).count('next.')
      kind = 'channel' if m.group(2) == 'channels' else 'checker'
      idx = int(m.group(3))
      path, value = _step(f'level{level}_{kind}{idx // 4}', idx % 4,
                          m.group(4), v)
    elif (m := re.fullmatch(r'dequant_flows\.flows\.(\d+)\.(.+)', k)):
      idx = int(m.group(1))
      path, value = _step(f'dequant_step{idx // 4}', idx % 4, m.group(2), v)
    elif (m := re.fullmatch(r'dequant_flows\.aux_conv\.0\.(weight|bias)', k)):
      path = f'dequant_aux_in/{"kernel" if m.group(1) == "weight" else "bias"}'
      value = conv_kernel(v) if m.group(1) == 'weight' else v
    elif (m := re.fullmatch(r'dequant_flows\.aux_conv\.(\d+)\.(.+)', k)):
      path, value = _gated(f'dequant_aux{int(m.group(1)) - 1}', m.group(2),
                           v)
    else:
      raise ValueError(f'Unexpected Flow++ array {k!r}.')
    set_path(params, path, value)
  return _stack_blocks(params)


def _stack_blocks(node: Any) -> Any:
  """Every coupling network's ``mid_convs#k`` entries stacked into
  ``mid_convs`` (:func:`coopjax.convert.common.stack_blocks`), the layout of
  :func:`coopjax.flows.flowpp.block_chain`."""
  if not isinstance(node, dict):
    return node
  return stack_blocks({k: _stack_blocks(v) for k, v in node.items()})


def checkpoint_params(state: Mapping[str, np.ndarray],
                      flow_only: bool = False) -> Dict[str, Any]:
  """``{'ebm': ..., 'flow': ...}`` (or ``{'flow': ...}``) from a flat
  checkpoint: ``ebm_net.*`` and ``flow_net.*`` (CoopFlow), or ``net.*`` (a
  pretrained Flow++)."""
  state = strip_module(state)
  if flow_only:
    return {'flow': flowpp_params(sub_state(state, 'net.'))}
  return {'ebm': ebm_res_params(sub_state(state, 'ebm_net.')),
          'flow': flowpp_params(sub_state(state, 'flow_net.'))}


def main(argv=None) -> None:
  """``python -m coopjax.convert.coopflow`` (module docstring)."""
  from coopjax.convert.common import run_import  # pylint: disable=import-outside-toplevel
  run_import(__doc__, lambda state, args: checkpoint_params(
      state, args.flow_only), argv)


if __name__ == '__main__':
  main()
