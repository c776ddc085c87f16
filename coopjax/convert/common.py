"""Helpers shared by the importers of the authors' PyTorch weights."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Type

import numpy as np


def set_path(tree: Dict[str, Any], path: str, value: np.ndarray) -> None:
  """``tree[a][b][c] = value`` for ``path='a/b/c'``; refuses duplicates."""
  *parents, leaf = path.split('/')
  for p in parents:
    tree = tree.setdefault(p, {})
  if leaf in tree:
    raise ValueError(f'Two PyTorch arrays map to {path!r}.')
  tree[leaf] = np.asarray(value, np.float32)


def block_path(level: int, j: int) -> str:
  """The coopjax module of residual block ``j`` of resolution ``level`` in
  :class:`coopjax.models.ResNetEnergy`: ``first_<level>`` (j = 0) or entry
  ``j - 1`` of the stacked ``rest_<level>``, written ``rest_<level>#<j - 1>``
  until :func:`stack_blocks` stacks them."""
  return f'first_{level}' if j == 0 else f'rest_{level}#{j - 1}'


def stack_blocks(node: Dict[str, Any],
                 error: Type[Exception] = ValueError) -> Dict[str, Any]:
  """Entries ``name#k`` of a nested dict become ``name``, their arrays
  stacked on a new leading axis in the order of ``k`` (the layout of
  ``nn.scan``); raises ``error`` when blocks are missing or differ."""
  groups: Dict[str, Dict[int, Any]] = {}
  out = {}
  for key, value in node.items():
    base, sep, index = key.partition('#')
    if sep:
      groups.setdefault(base, {})[int(index)] = value
    else:
      out[key] = value
  for base, members in groups.items():
    if sorted(members) != list(range(len(members))):
      raise error(f'{base}: blocks {sorted(members)} found; expected every '
                  'block of the resolution.')
    out[base] = _stack_trees([members[k] for k in range(len(members))], error)
  return out


def _stack_trees(trees: List[Any], error: Type[Exception]) -> Any:
  if isinstance(trees[0], Mapping):
    keys = set(trees[0])
    if any(set(t) != keys for t in trees):
      raise error('Blocks of one resolution differ in their entries.')
    return {k: _stack_trees([t[k] for t in trees], error) for k in trees[0]}
  return np.stack(trees)


def conv_kernel(w: np.ndarray) -> np.ndarray:
  """PyTorch ``Conv2d`` weight ``[O, I, kh, kw]`` -> Flax ``[kh, kw, I, O]``;
  a ``ConvTranspose2d`` weight ``[I, O, kh, kw]`` -> ``[kh, kw, I, O]`` is
  :func:`conv_transpose_kernel`."""
  return np.transpose(w, (2, 3, 1, 0))


def conv_transpose_kernel(w: np.ndarray) -> np.ndarray:
  """PyTorch ``ConvTranspose2d`` weight ``[I, O, kh, kw]`` -> ``[kh, kw, I, O]``."""
  return np.transpose(w, (2, 3, 0, 1))


def strip_module(state: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """Drops ``DataParallel``'s ``module.`` prefix from every name."""
  return {(k[len('module.'):] if k.startswith('module.') else k): v
          for k, v in state.items()}


def sub_state(state: Mapping[str, np.ndarray],
              prefix: str) -> Dict[str, np.ndarray]:
  """The entries under ``prefix`` (e.g. ``'ebm_net.'``), prefix removed."""
  out = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
  if not out:
    raise KeyError(f'No arrays named {prefix}*; the checkpoint has '
                   f'{sorted({k.split(".")[0] for k in state})}.')
  return out


def check_shapes(params: Any, wanted: Any, what: str) -> None:
  """Raises ValueError naming the first array whose path or shape differs
  between the converted ``params`` and the module's ``wanted`` shapes."""
  import jax  # pylint: disable=import-outside-toplevel
  got = {jax.tree_util.keystr(p): np.shape(v)
         for p, v in jax.tree_util.tree_leaves_with_path(params)}
  want = {jax.tree_util.keystr(p): tuple(v.shape)
          for p, v in jax.tree_util.tree_leaves_with_path(wanted)}
  for name in sorted(set(got) | set(want)):
    if got.get(name) != want.get(name):
      raise ValueError(
          f'{what}: the converted weights do not fit the config\'s network at '
          f'{name}: checkpoint {got.get(name)}, network {want.get(name)}. '
          f'Check the config (widths, blocks, components) against the '
          f'checkpoint.')


def load_config(spec: str):
  """The config of ``'path/to/config.py[:variant]'`` (as ``--config`` takes)."""
  import importlib.util  # pylint: disable=import-outside-toplevel
  path, _, variant = spec.partition(':')
  module_spec = importlib.util.spec_from_file_location('coopjax_config', path)
  if module_spec is None or not path.endswith('.py'):
    raise ValueError(f'--config={spec!r}: give a config file, e.g. '
                     f'configs/coopflow_cifar10.py[:variant].')
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(variant) if variant else module.get_config()


def write_workdir(config, workdir: str, params: Dict[str, Any],
                  batch: Dict[str, np.ndarray]) -> None:
  """Step 0 of a new coopjax workdir with ``params`` (EMA = parameters,
  fresh optimiser states) for ``config``.

  ``batch`` (``{'x': [B, ...]}`` in the data's shape) tells the algorithm the
  example shape. A network the checkpoint lacks (the EBM, importing a
  pretrained flow) gets the algorithm's initialisation. Refuses a workdir
  that already holds checkpoints, and converted weights whose shapes differ
  from the config's networks.
  """
  import os  # pylint: disable=import-outside-toplevel
  import types  # pylint: disable=import-outside-toplevel

  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

  from coopjax import registry  # pylint: disable=import-outside-toplevel
  from coopjax.trainer import checkpoint  # pylint: disable=import-outside-toplevel
  from coopjax.trainer import state as ts  # pylint: disable=import-outside-toplevel
  from coopjax.trainer import workdir as wd  # pylint: disable=import-outside-toplevel

  ckpts = os.path.join(workdir, 'checkpoints')
  if os.path.isdir(ckpts) and os.listdir(ckpts):
    raise FileExistsError(f'{ckpts} already holds checkpoints; import into a '
                          f'new --workdir (nothing was written).')
  x = np.asarray(batch['x'], np.float32)
  dataset = types.SimpleNamespace(example_shape=x.shape[1:], kind='images',
                                  name=config.data.name)
  algo = registry.build(config, dataset)
  wanted, _ = jax.eval_shape(algo.init_variables, jax.random.key(0),
                             {'x': x})
  missing = [name for name in wanted if name not in params]
  if missing:
    fresh, _ = algo.init_variables(jax.random.key(0), {'x': x})
    params = {**{k: fresh[k] for k in missing}, **params}
    print(f'The checkpoint has no {missing}: initialised.')
  for name in wanted:
    check_shapes(params[name], wanted[name], name)
  params = jax.tree_util.tree_map(jnp.asarray,
                                  {k: params[k] for k in wanted})
  state = ts.create(params, {}, algo.optimizers)
  wd.check_writable(workdir)
  wd.save_config(config, workdir)
  ckpt = checkpoint.Checkpointer(workdir)
  ckpt.save(0, state, force=True)
  ckpt.wait()
  ckpt.close()


def run_import(description: str, convert, argv=None) -> None:
  """The command line of the importers: ``--checkpoint``, ``--config``,
  ``--workdir`` (``convert(state, args) -> (params, example_shape)``)."""
  import argparse  # pylint: disable=import-outside-toplevel
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument('--checkpoint', required=True,
                      help='the authors\' .pth / .pth.tar file')
  parser.add_argument('--config', required=True,
                      help='config file[:variant] whose networks fit it')
  parser.add_argument('--workdir', required=True, help='a new coopjax workdir')
  parser.add_argument('--flow_only', action='store_true',
                      help='CoopFlow: a pretrained Flow++ (entry "net")')
  args = parser.parse_args(argv)
  from coopjax.convert import torch_file  # pylint: disable=import-outside-toplevel
  state = torch_file.flatten(torch_file.load(args.checkpoint))
  config = load_config(args.config)
  params = convert(state, args)
  size, channels = config.data.image_size, config.data.channels
  write_workdir(config, args.workdir, params,
                {'x': np.zeros((2, size, size, channels), np.float32)})
  print(f'{args.workdir}: step 0 with {sorted(params)} from '
        f'{args.checkpoint}.')
