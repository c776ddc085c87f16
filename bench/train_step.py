"""Train-step and Langevin throughput of CDRL on the present backend.

    python bench/train_step.py                      # the reference toy setting
    python bench/train_step.py --config=configs/checkerboard.py --steps=20

Prints steps/s of the full cooperative train step (jitted, state donated) and
Langevin gradient evaluations/s (per-example gradients of the EBM inside the
K-step chain) for the given config; by default the CDRL authors' 2-D toy setting
(batch 2500, reference widths). It prints coopjax's figures only: a ratio to
the authors' PyTorch step is honest only when both run on the same machine at
the same time, which this script cannot do.
"""

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from coopjax import cdrl, rng
from common import Stepper, dataset_for, fresh_state, load_config, timed  # pylint: disable=g-bad-import-order



def main():
  here = os.path.dirname(os.path.abspath(__file__))
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', default=os.path.join(
      here, '..', 'configs', 'checkerboard.py:reference'))
  parser.add_argument('--steps', type=int, default=10)
  args = parser.parse_args()
  config = load_config(args.config)
  batch = config.data.batch_size
  dataset = dataset_for(config, 2 * batch)
  algo, mesh, state = fresh_state(config, dataset)
  one_step = Stepper(config, algo, mesh, state, dataset.batch(0, batch, 0))
  x = one_step.batch
  key = jax.random.key(0)
  start = time.perf_counter()
  jax.block_until_ready(one_step())
  compile_s = time.perf_counter() - start
  step_s = timed(one_step, args.steps)

  model = algo.model
  ev = {'params': one_step.state.params['ebm'],
        'batch_stats': one_step.state.stats['ebm']}
  t = jnp.asarray(np.random.default_rng(1).integers(1, 7, batch), jnp.int32)
  keys = rng.example_keys(key, 0, batch)
  chain = jax.jit(lambda ev, y: cdrl.refine(model, ev, y, y, t, keys)[0])
  chain_s = timed(lambda: chain(ev, x['x']), args.steps)
  grads_per_s = batch * model.n_steps / chain_s

  print(f'backend={jax.default_backend()} devices={jax.device_count()} '
        f'config={args.config} batch={batch} K={model.n_steps}')
  print(f'compile: {compile_s:.1f} s')
  print(f'train step: {step_s:.3f} s/step = {1 / step_s:.2f} steps/s '
        f'({batch / step_s:,.0f} examples/s, '
        f'{batch / step_s / jax.device_count():,.0f} per device)')
  print(f'Langevin chain alone: {chain_s:.3f} s = {grads_per_s:,.0f} '
        f'per-example EBM gradient evaluations/s')
  return 0


if __name__ == '__main__':
  sys.exit(main())
