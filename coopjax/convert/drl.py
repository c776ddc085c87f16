"""The DRL authors' TF/Keras network variables as coopjax variables.

``ruiqigao/recovery_likelihood``'s ``net_res_temb2`` (``network.py``,
``nn.py``) is :class:`coopjax.models.ResNetEnergy` with ``arch='drl'``
(docs/algorithms.md, section 2.11). :func:`convert_variables` maps a flat
``{Keras variable name: array}`` (``v.name`` of ``net.weights``, e.g.
``net/level_1_block_2/conv2/sn_13/W:0``) onto its tree; the ``sn_<k>``
scopes (numbered in creation order) and a leading model scope are ignored:

* ``temb/dense0``, ``temb/dense1``, ``temb/dense2`` -> ``temb_map1``,
  ``temb_map2``, ``temb_final``; ``conv_in`` -> ``stem``;
* ``level_<i>_block_<j>/{conv1, conv2, conv_shortcut, temb_proj}`` ->
  ``<block>/{conv1, conv2, short_cut, temb_map}`` where ``<block>`` is
  :func:`coopjax.convert.common.block_path` (``first_<i>``, or ``rest_<i>``
  stacked for ``nn.scan``); ``conv2``'s scale ``g`` -> ``<block>/g``;
* ``down_<i>_attn_<j>/{q, k, v}`` -> ``<block>/attn/to_qkv`` (the three
  kernels and biases concatenated), ``proj_out`` -> ``<block>/attn/to_out``;
* leaves ``W`` -> ``kernel`` (same layout: ``[in, out]``, ``[kh, kw, in,
  out]``), ``b`` -> ``bias``, ``sn_u`` ``[1, out]`` -> ``batch_stats/.../u``
  and ``v``.

Their spectral norm stores only ``u`` and takes one power iteration at every
forward (training or not). coopjax stores ``u`` and ``v`` and uses them as
they are in eval mode; so by default (``advance=True``) the imported
``u``, ``v`` are one power iteration from the stored ``u``: an eval-mode
coopjax forward then equals the authors' next forward. ``advance=False``
keeps their ``u`` (for a training-mode forward, ``update_stats=True``,
which takes that iteration itself).
"""

from __future__ import annotations

import re
from typing import Any, Dict, Mapping

import numpy as np

from coopjax.convert import common

LAYERS = {'temb/dense0': 'temb_map1', 'temb/dense1': 'temb_map2',
          'temb/dense2': 'temb_final', 'conv_in': 'stem'}
BLOCK_LAYERS = {'conv1': 'conv1', 'conv2': 'conv2',
                'conv_shortcut': 'short_cut', 'temb_proj': 'temb_map'}
LEAVES = {'W': 'kernel', 'b': 'bias', 'sn_u': 'u', 'g': 'g'}
QKV = ('q', 'k', 'v')
_PATTERN = re.compile(
    r'(?:^|/)(?P<layer>temb/dense[012]|conv_in'
    r'|level_(?P<li>\d+)_block_(?P<lj>\d+)/(?P<block>[a-z_]+\d?)'
    r'|down_(?P<ai>\d+)_attn_(?P<aj>\d+)/(?P<attn>q|k|v|proj_out))'
    r'/(?:.*/)?(?P<leaf>W|b|g|sn_u)(?::\d+)?$')


def module_path(name: str) -> tuple:
  """``(coopjax module path, leaf)`` of one Keras variable name, e.g.
  ``'net/level_1_block_2/conv2/sn_13/W:0'`` -> ``('rest_1#1/conv2',
  'kernel')``; for ``q``, ``k``, ``v`` the path ends in ``to_qkv#q``.

  Raises:
    ValueError: a name of no layer of ``net_res_temb2``.
  """
  m = _PATTERN.search(name)
  if m is None:
    raise ValueError(f'{name!r} is no variable of the DRL authors\' '
                     'net_res_temb2.')
  leaf = LEAVES[m['leaf']]
  if m['li'] is not None:
    if m['block'] not in BLOCK_LAYERS:
      raise ValueError(f'{name!r}: unknown block layer {m["block"]!r}.')
    block = common.block_path(int(m['li']), int(m['lj']))
    if leaf == 'g':  # conv2's output scale is the block's g
      return block, 'g'
    return f'{block}/{BLOCK_LAYERS[m["block"]]}', leaf
  if m['ai'] is not None:
    block = common.block_path(int(m['ai']), int(m['aj']))
    layer = 'to_out' if m['attn'] == 'proj_out' else f'to_qkv#{m["attn"]}'
    return f'{block}/attn/{layer}', leaf
  return LAYERS[m['layer']], leaf


def convert_variables(weights: Mapping[str, np.ndarray],
                      advance: bool = True) -> Dict[str, Any]:
  """The authors' ``net_res_temb2`` variables as ``ResNetEnergy(arch='drl')``
  variables.

  Args:
    weights: ``{Keras variable name: array}`` of the network.
    advance: import ``u``, ``v`` one power iteration on (see the module
      docstring); False: their ``u``, and the ``v`` it gives.

  Returns:
    ``{'params': {...}, 'batch_stats': {...}}``, float32 numpy arrays.
  """
  params: Dict[str, Any] = {}
  stats: Dict[str, Any] = {}
  qkv: Dict[str, Dict[str, Dict[str, np.ndarray]]] = {}
  for name, value in weights.items():
    path, leaf = module_path(name)
    value = np.asarray(value, np.float32)
    if '/to_qkv#' in path:
      base, _, which = path.rpartition('#')
      qkv.setdefault(base, {}).setdefault(leaf, {})[which] = value
    elif leaf == 'u':
      common.set_path(stats, f'{path}/u', value.reshape(-1))
    else:
      common.set_path(params, f'{path}/{leaf}', value)
  for base, leaves in qkv.items():
    for leaf, parts in leaves.items():
      if sorted(parts) != sorted(QKV):
        raise ValueError(f'{base}: attention {leaf} has {sorted(parts)}; '
                         'expected q, k and v.')
      common.set_path(params, f'{base}/{leaf}',
                      np.concatenate([parts[c] for c in QKV], axis=-1))
  params = common.stack_blocks(params)
  return {'params': params,
          'batch_stats': _with_v(params, common.stack_blocks(stats), advance)}


def _with_v(params: Dict[str, Any], stats: Dict[str, Any],
            advance: bool) -> Dict[str, Any]:
  """``{'u', 'v'}`` nodes from the authors' ``u``: one power iteration of
  every layer at once (:func:`coopjax.models.layers.power_iteration`)."""
  import jax  # pylint: disable=import-outside-toplevel
  from coopjax.models import layers  # pylint: disable=import-outside-toplevel

  raw = _map_u(stats)
  try:
    new = jax.jit(layers.power_iteration)(params, raw)
  except KeyError as e:
    raise ValueError(f'A spectral-norm vector without its W: {e}.') from e
  pick = lambda r, n: {'u': np.asarray(n['u'] if advance else r['u']),
                       'v': np.asarray(n['v'])}
  return jax.tree_util.tree_map(
      pick, raw, new, is_leaf=lambda x: isinstance(x, dict) and 'u' in x)


def _map_u(tree: Dict[str, Any]) -> Dict[str, Any]:
  """Every ``{'u': u}`` node as ``{'u': u, 'v': None}`` (the form
  :func:`~coopjax.models.layers.power_iteration` takes; ``v`` unused)."""
  if set(tree) == {'u'}:
    return {'u': tree['u'], 'v': None}
  return {k: _map_u(v) for k, v in tree.items()}
