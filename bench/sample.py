"""Time to draw samples with CDRL, and the EBM's Langevin throughput.

    python bench/sample.py                                   # CIFAR-10 default, 100 samples
    python bench/sample.py --config=configs/digits.py --num=500
    python bench/sample.py --dtype=bfloat16                  # bf16 compute

Times Algorithm 2 end to end (6 levels x K Langevin steps + the initializer
at each level + the Tweedie step) for ``--num`` samples with freshly
initialised networks of the config's architecture (the cost does not depend
on the weights), after one compile. Paper: 12.2 s for 100 CIFAR-10 samples on
an A6000.
"""

import argparse
import os
import sys

import jax

from common import compile_and_time, dataset_for, fresh_state, load_config, sampler_for  # pylint: disable=g-bad-import-order



def main():
  here = os.path.dirname(os.path.abspath(__file__))
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', default=os.path.join(here, '..', 'configs',
                                                       'cifar10.py'))
  parser.add_argument('--num', type=int, default=100)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--dtype', default='')
  args = parser.parse_args()
  config = load_config(args.config)
  if args.dtype:
    config.model.dtype = args.dtype
  dataset = dataset_for(config, 4, prefer_random=True)
  algo, mesh, state = fresh_state(config, dataset)
  sampler = sampler_for(algo, mesh, args.num)
  compile_s, times = compile_and_time(
      lambda i: sampler(state, jax.random.key(i), 0), args.repeats)
  best = min(times)
  model = algo.model
  evals = args.num * model.num_levels * model.n_steps
  print(f'backend={jax.default_backend()} device={jax.devices()[0].device_kind}'
        f' config={args.config} dtype={config.model.dtype} num={args.num} '
        f'levels={model.num_levels} K={model.n_steps} '
        f'tweedie={model.tweedie}')
  print(f'compile: {compile_s:.1f} s')
  print(f'sampling {args.num}: best {best:.3f} s, runs '
        f'{", ".join(f"{t:.3f}" for t in times)} s')
  print(f'EBM Langevin gradient evaluations: {evals / best:,.0f} per s '
        f'(per example, upper bound: includes the initializer)')
  return 0


if __name__ == '__main__':
  sys.exit(main())
