"""Where the compile time of a train step goes: StableHLO size by part, trace
and lowering seconds, and (with ``--compile``) XLA's compile seconds.

    python bench/compile.py                                  # CDRL CIFAR-10, full size
    python bench/compile.py --config=configs/digits.py --compile
    python bench/compile.py --compile --dtype=bfloat16

Shapes come from ``jax.eval_shape`` (no parameters are initialised), so the
lowering figures take seconds even at full size. Parts: the whole data-parallel
train step, the algorithm's per-device gradients (losses, chains, networks),
the update of the state (optimiser, EMA, the finiteness check and the
select that keeps the old state on a non-finite step), and the networks'
initialisation.
"""

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp

from coopjax import registry
from coopjax.trainer import parallel
from coopjax.trainer import state as ts
from common import dataset_for, load_config  # pylint: disable=g-bad-import-order


def lines(lowered) -> int:
  return lowered.as_text().count('\n')


def main():
  here = os.path.dirname(os.path.abspath(__file__))
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', default=os.path.join(
      here, '..', 'configs', 'cifar10.py'))
  parser.add_argument('--batch', type=int, default=2)
  parser.add_argument('--compile', action='store_true',
                      help='also compile the train step (minutes at full size)')
  parser.add_argument('--dtype', default=None,
                      help="config.model.dtype, e.g. 'bfloat16'")
  parser.add_argument('--compile_parts', action='store_true',
                      help='also compile each part on its own')
  parser.add_argument('--parts', default='gradients,update,initialisation',
                      help='the parts --compile_parts compiles (comma list)')
  args = parser.parse_args()
  config = load_config(args.config)
  config.data.batch_size = args.batch
  if args.dtype:
    config.model.dtype = args.dtype
  dataset = dataset_for(config, max(args.batch, 8), prefer_random=True)
  algo = registry.build(config, dataset)
  batch = dataset.batch(0, args.batch, 0)
  key = jax.random.key(0)
  params, stats = jax.eval_shape(algo.init_variables, key, batch)
  state = jax.eval_shape(lambda p, s: ts.create(p, s, algo.optimizers),
                         params, stats)
  print(f'backend={jax.default_backend()} config={args.config} '
        f'batch={args.batch} parameter arrays='
        f'{len(jax.tree_util.tree_leaves(params))} state arrays='
        f'{len(jax.tree_util.tree_leaves(state))}')
  mesh = parallel.make_mesh(jax.devices()[:1])
  step = parallel.make_train_step(algo.grads_fn, algo.optimizers,
                                  config.train.ema, mesh)
  x = jax.eval_shape(lambda: jax.tree_util.tree_map(jnp.asarray, batch))
  start = time.perf_counter()
  lowered = step.lower(state, x, key)
  lower_s = time.perf_counter() - start
  print(f'train step: {lines(lowered):,} StableHLO lines; trace + lower '
        f'{lower_s:.1f} s')
  keys = jax.eval_shape(lambda: jax.random.split(key, args.batch))
  parts = {
      'gradients (grads_fn)': jax.jit(
          lambda p, s, b, k: algo.grads_fn(p, s, b, k, jnp.int32(0))).lower(
              params, stats, x, keys),
      'update (optimiser, EMA, finite check, keep-or-revert)': jax.jit(
          lambda s, g: ts.guarded_update(s, g, s.stats, algo.optimizers,
                                         0.999)).lower(state, params),
      'initialisation': jax.jit(algo.init_variables).lower(key, batch),
  }
  for name, part in parts.items():
    if args.compile_parts and name.split()[0] in args.parts.split(','):
      start = time.perf_counter()
      part.compile()
      took = f'; XLA compile {time.perf_counter() - start:.1f} s'
    else:
      took = ''
    print(f'  {name}: {lines(part):,} lines{took}')
  if args.compile:
    start = time.perf_counter()
    lowered.compile()
    print(f'XLA compile of the train step: {time.perf_counter() - start:.1f} s')
  return 0


if __name__ == '__main__':
  sys.exit(main())
