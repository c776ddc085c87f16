"""Imports the CDRL authors' PyTorch checkpoints into a coopjax workdir.

    python -m coopjax.convert.cdrl --checkpoint=cifar10_uncond.pth.tar \\
        --config=configs/cifar10.py --workdir=runs/cifar10_authors
    python -m coopjax.main --config=configs/cifar10.py \\
        --workdir=runs/cifar10_authors --mode=sample

The checkpoint is a file of ``AlvinZhuyx/CDRL``'s ``main_uncond.py`` /
``main_cond.py`` (a dict with ``pi_state_dict``, ``p_state_dict``,
``pi_ema_state_dict``, ``p_ema_state_dict``; DDP ``module.`` prefixes are
dropped). It is read without executing pickled code
(:mod:`coopjax.convert.torch_file`; torch is not needed). The config must
describe the same networks (a mismatch is reported with every differing
array). The workdir gets ``config.json`` and one checkpoint holding the
parameters, their EMA (torch_ema's ``shadow_params``) and the spectral-norm
vectors ``u``, ``v``; the step is the EMA's update count. Optimiser moments
are not imported (a continued run starts Adam, and its warm-up, afresh).
An existing checkpoint in the workdir is never overwritten.

The name mapping (:func:`convert_state_dict`) is one table: module paths
(:data:`MODULE_RULES`) and leaves (:func:`_leaf`), e.g.
``module_list.12.conv1.weight_orig`` ``[out, in, 3, 3]`` (with 8 blocks per
resolution ``module_list`` counts the pooling layers too: the third block of
the second resolution) -> ``params/rest_1/conv1/kernel[1]`` ``[3, 3, in,
out]`` (:func:`coopjax.convert.common.block_path`), ``weight_u`` /
``weight_v`` -> ``batch_stats/.../u`` / ``v`` (``v`` reordered to the
kernel's ``(kh, kw, in)`` flattening), ``downs.1.2.mlp.1.weight`` ->
``params/downs_1_2/mlp/kernel``, GroupNorm ``weight`` -> ``scale``, the
attention's 1x1 convs ``to_qkv`` / ``to_out`` -> dense kernels.
"""

from __future__ import annotations

import re
import sys
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from coopjax.convert import common, torch_file

KEYS = ('pi_state_dict', 'p_state_dict', 'pi_ema_state_dict',
        'p_ema_state_dict')
SN_BUFFERS = ('weight_u', 'weight_v')
DENSE_1X1 = ('to_qkv', 'to_out')  # 1x1 convs that are dense layers here


class CheckpointFormatError(ValueError):
  """The file is not a CDRL checkpoint of the networks the config builds."""


def _ebm_block(match: re.Match, blocks_per_res: int) -> str:
  """``module_list.<m>``: 0 is the stem; then per resolution
  ``blocks_per_res`` blocks and one (parameter-free) pooling layer. Block
  ``j`` of resolution ``i`` is :func:`common.block_path`."""
  m, rest = int(match.group(1)), match.group(2)
  if m == 0:
    return 'stem' + rest
  level, j = divmod(m - 1, blocks_per_res + 1)
  if j == blocks_per_res:
    raise CheckpointFormatError(
        f'module_list.{m} has parameters but is a pooling layer with '
        f'blocks_per_res={blocks_per_res}; set config.model.blocks_per_res '
        'to the checkpoint\'s (the authors\' n_blocks).')
  return common.block_path(level, j) + rest


# (regex on the torch module path, coopjax module path: a template or a
# function of the match and blocks_per_res). The first match wins; paths
# that match nothing keep their names ('.' -> '/').
MODULE_RULES: Tuple[Tuple[str, Any], ...] = (
    (r'module_list\.(\d+)(.*)', _ebm_block),
    (r'time_mlp\.(\d+)', r'time_mlp_\1'),
    (r'y_mlp\.0', 'y_mlp'),
    (r'(downs|ups)\.(\d+)\.(\d+)\.mlp\.1', r'\1_\2_\3/mlp'),
    (r'(downs|ups)\.(\d+)\.(\d+)(.*)', r'\1_\2_\3\4'),
    (r'(mid_block\d)\.mlp\.1', r'\1/mlp'),
)


def module_path(torch_path: str, blocks_per_res: int) -> str:
  """The coopjax module path (``'a/b'``) of a torch module path (``'a.b'``)."""
  for pattern, target in MODULE_RULES:
    match = re.fullmatch(pattern, torch_path)
    if match:
      path = (target(match, blocks_per_res) if callable(target)
              else match.expand(target))
      return path.replace('.', '/')
  return torch_path.replace('.', '/')


def _kernel(w: np.ndarray, module: str) -> np.ndarray:
  if w.ndim == 2:  # Linear [out, in]
    return w.T
  if w.ndim == 4 and module.rsplit('.', 1)[-1] in DENSE_1X1:
    return w[:, :, 0, 0].T
  if w.ndim == 4:  # Conv2d [out, in, kh, kw]
    return w.transpose(2, 3, 1, 0)
  raise CheckpointFormatError(f'{module}: weight of shape {w.shape} is '
                              'neither a linear nor a conv weight.')


def _leaf(module: str, leaf: str, value: np.ndarray,
          weight_shape: Optional[tuple]) -> Tuple[str, str, np.ndarray]:
  """``(collection, name, array)`` of one torch leaf of ``module``."""
  if leaf in ('weight', 'weight_orig'):
    if value.ndim == 1:  # GroupNorm
      return 'params', 'scale', value
    return 'params', 'kernel', _kernel(value, module)
  if leaf == 'bias':
    return 'params', 'bias', value
  if leaf == 'g':  # the EBM block's per-channel scale [1, C, 1, 1]
    return 'params', 'g', value.reshape(-1)
  if leaf == 'weight_u':
    return 'batch_stats', 'u', value
  if leaf == 'weight_v':
    if weight_shape is not None and len(weight_shape) == 4:
      _, cin, kh, kw = weight_shape  # torch flattens (in, kh, kw)
      value = value.reshape(cin, kh, kw).transpose(1, 2, 0).reshape(-1)
    return 'batch_stats', 'v', value
  raise CheckpointFormatError(f'Unknown state-dict entry {module}.{leaf}.')


def convert_state_dict(state_dict: Mapping[str, np.ndarray],
                       blocks_per_res: int = 0) -> Dict[str, Any]:
  """A torch state dict of the authors' EBM or U-Net as coopjax variables.

  Args:
    state_dict: flat ``{torch name: array}`` (``module.`` already dropped).
    blocks_per_res: the EBM's residual blocks per resolution (their
      ``n_blocks``; needed to number ``module_list``).

  Returns:
    ``{'params': {...}, 'batch_stats': {...}}`` (no ``batch_stats`` without
    spectral norm), nested dicts of float32 arrays.
  """
  out: Dict[str, Any] = {}
  for name, value in state_dict.items():
    torch_module, _, leaf = name.rpartition('.')
    weight = state_dict.get(f'{torch_module}.weight_orig')
    collection, key, array = _leaf(
        torch_module, leaf, np.asarray(value, np.float32),
        None if weight is None else weight.shape)
    node = out.setdefault(collection, {})
    for part in module_path(torch_module, blocks_per_res).split('/'):
      node = node.setdefault(part, {})
    if key in node:
      raise CheckpointFormatError(f'{name} maps onto an entry already filled.')
    node[key] = array
  return {collection: common.stack_blocks(tree, CheckpointFormatError)
          for collection, tree in out.items()}


def ema_state_dict(ema: Mapping[str, Any],
                   state_dict: Mapping[str, np.ndarray]) -> Dict[str, Any]:
  """torch_ema's state (``shadow_params``: a list in ``parameters()`` order)
  as a state dict named like ``state_dict``, whose parameters are its
  entries other than the spectral-norm buffers, in order."""
  shadow = ema.get('shadow_params') if isinstance(ema, Mapping) else None
  if shadow is None:
    raise CheckpointFormatError('The EMA entry has no shadow_params list '
                                '(expected a torch_ema state dict).')
  names = [n for n in state_dict if not n.endswith(SN_BUFFERS)]
  if len(names) != len(shadow):
    raise CheckpointFormatError(
        f'The EMA holds {len(shadow)} tensors but the network has '
        f'{len(names)} parameters.')
  out = {}
  for name, value in zip(names, shadow):
    if tuple(value.shape) != tuple(state_dict[name].shape):
      raise CheckpointFormatError(
          f'EMA tensor for {name} has shape {tuple(value.shape)}; the '
          f'parameter has {tuple(state_dict[name].shape)}.')
    out[name] = value
  return out


def read_checkpoint(path: str, blocks_per_res: int) -> Dict[str, Any]:
  """The four networks of an authors' checkpoint as coopjax variables.

  Returns:
    ``{'params': {'ebm', 'init'}, 'ema': {'ebm', 'init'}, 'stats': {'ebm'},
    'step': int}``; the EMA uses the live spectral-norm vectors, as the
    authors' sampling does (torch_ema averages parameters only).

  Raises:
    CheckpointFormatError: an entry is missing or malformed.
  """
  tree = torch_file.load(path)
  missing = [k for k in KEYS if not isinstance(tree, dict) or k not in tree]
  if missing:
    have = sorted(map(str, tree)) if isinstance(tree, dict) else type(tree)
    raise CheckpointFormatError(
        f'{path} is not a CDRL checkpoint: it lacks {missing} (it has '
        f'{have}).')
  flat = {k: torch_file.flatten(tree[k]) for k in KEYS[:2]}
  ebm = convert_state_dict(flat['pi_state_dict'], blocks_per_res)
  init = convert_state_dict(flat['p_state_dict'])
  ebm_ema = convert_state_dict(
      ema_state_dict(tree['pi_ema_state_dict'], flat['pi_state_dict']),
      blocks_per_res)
  init_ema = convert_state_dict(
      ema_state_dict(tree['p_ema_state_dict'], flat['p_state_dict']))
  return {'params': {'ebm': ebm['params'], 'init': init['params']},
          'ema': {'ebm': ebm_ema['params'], 'init': init_ema['params']},
          'stats': {'ebm': ebm.get('batch_stats', {})},
          'step': int(tree['pi_ema_state_dict'].get('num_updates') or 0)}


def _shapes(tree: Any, prefix: str = '') -> Dict[str, tuple]:
  if isinstance(tree, Mapping):
    out = {}
    for k, v in tree.items():
      out.update(_shapes(v, f'{prefix}{k}/'))
    return out
  return {prefix[:-1]: tuple(np.shape(tree))}


def mismatches(converted: Any, wanted: Any) -> List[str]:
  """Lines naming every array that differs between two variable trees."""
  a, b = _shapes(converted), _shapes(wanted)
  lines = []
  for path in sorted(set(a) | set(b)):
    if path not in b:
      lines.append(f'{path}: in the checkpoint, not in the config\'s model')
    elif path not in a:
      lines.append(f'{path}: in the config\'s model, not in the checkpoint')
    elif a[path] != b[path]:
      lines.append(f'{path}: {a[path]} in the checkpoint, {b[path]} in the '
                   'config\'s model')
  return lines


def import_checkpoint(config, checkpoint: str, workdir: str):
  """Writes ``workdir`` (config.json + one checkpoint) from an authors' file.

  Builds the algorithm from ``config`` (its dataset gives the example shape),
  checks the converted arrays against its variables, and saves a train state
  with the imported parameters, EMA and statistics (optimiser state fresh).

  Returns:
    The saved train state.

  Raises:
    CheckpointFormatError: the networks differ from the config's (every
      differing array is listed).
    FileExistsError: ``workdir`` already holds a checkpoint.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from coopjax import data, registry  # pylint: disable=g-import-not-at-top
  from coopjax.trainer import state as ts  # pylint: disable=g-import-not-at-top
  from coopjax.trainer import workdir as wd  # pylint: disable=g-import-not-at-top
  from coopjax.trainer.checkpoint import Checkpointer  # pylint: disable=g-import-not-at-top

  if config.algorithm != 'cdrl':
    raise ValueError(f'{checkpoint} holds a CDRL model; the config has '
                     f'algorithm={config.algorithm!r}.')
  converted = read_checkpoint(checkpoint, int(config.model.blocks_per_res))
  wd.check_writable(workdir)
  ckpt = Checkpointer(workdir, config.train.keep_checkpoints)
  if ckpt.latest_step() is not None:
    raise FileExistsError(
        f'{ckpt.directory} already holds checkpoint {ckpt.latest_step()}; '
        'nothing was written. Import into a fresh --workdir.')
  dataset = data.load(config.data, config.seed)
  algo = registry.build(config, dataset)
  batch = dataset.batch(0, min(config.data.batch_size, len(dataset)),
                        config.seed)
  params, stats = jax.eval_shape(algo.init_variables,
                                 jax.random.key(config.seed), batch)
  problems = []
  for what, got, want in (('params', converted['params'], params),
                          ('stats', converted['stats'], stats),
                          ('ema', converted['ema'], params)):
    problems += [f'{what}/{line}' for line in mismatches(got, want)]
  if problems:
    raise CheckpointFormatError(
        f'{checkpoint} holds different networks than the config\'s model: '
        + '; '.join(problems[:12])
        + (f' (and {len(problems) - 12} more)' if len(problems) > 12 else '')
        + '. Set config.model (width, temb_dim, mults, blocks_per_res, '
        'init_width, init_mults, init_blocks, init_attn, num_classes) to the '
        'checkpoint\'s networks; nothing was written.')
  as_jax = lambda t: jax.tree_util.tree_map(jax.numpy.asarray, t)
  state = ts.create(as_jax(converted['params']), as_jax(converted['stats']),
                    algo.optimizers)
  state = state.replace(step=jax.numpy.asarray(converted['step'],
                                               jax.numpy.int32),
                        ema=as_jax(converted['ema']))
  wd.save_config(config, workdir)
  ckpt.save(converted['step'], state, force=True)
  ckpt.wait()
  ckpt.close()
  return state


def main(argv):
  """``python -m coopjax.convert.cdrl --checkpoint=F --config=C --workdir=W``."""
  del argv
  from absl import flags, logging  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  f = flags.FLAGS
  state = import_checkpoint(f.config, f.checkpoint, f.workdir)
  print(f'Imported {f.checkpoint} into {f.workdir} at step '
        f'{int(state.step)}; sample with: python -m coopjax.main '
        f'--config=<the same config> --workdir={f.workdir} --mode=sample')


def run(argv: Optional[List[str]] = None) -> None:
  """Defines the flags and runs :func:`main` (the module's entry point)."""
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file(
      'config', None, 'Config describing the networks (path[:variant]).',
      lock_config=True)
  flags.DEFINE_string('checkpoint', None, 'The authors\' .pth.tar file.')
  flags.DEFINE_string('workdir', None, 'New coopjax workdir to write.')
  flags.mark_flags_as_required(['config', 'checkpoint', 'workdir'])
  app.run(main, argv)


if __name__ == '__main__':
  sys.exit(run())
