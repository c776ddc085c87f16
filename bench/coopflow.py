"""CoopFlow's sampling time and training throughput.

    python bench/coopflow.py                         # CIFAR-10 reference nets
    python bench/coopflow.py --small                 # reduced nets for a CPU
    python bench/coopflow.py --config=configs/coopflow_digits.py --num=500

Times, with freshly initialised networks of the config's architecture (the
cost does not depend on the weights) and after one compile: drawing ``--num``
samples (the flow's inverse, then K Langevin steps on the EBM), and the
data-parallel train step (images per second). Paper: 100 CIFAR-10 samples in
2.5 s on an A6000 with K = 30. ``--small`` shrinks the EBM to 32 channels and
the flow to 2 scales x 4 steps of width 32, for a CPU; it says so in its output.
"""

import argparse
import os
import sys

import jax

from common import Stepper, compile_and_time, dataset_for, fresh_state, load_config, sampler_for, timed  # pylint: disable=g-bad-import-order



def main():
  here = os.path.dirname(os.path.abspath(__file__))
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', default=os.path.join(
      here, '..', 'configs', 'coopflow_cifar10.py'))
  parser.add_argument('--num', type=int, default=100)
  parser.add_argument('--batch', type=int, default=0,
                      help='train batch (default: the config\'s)')
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--small', action='store_true')
  args = parser.parse_args()
  config = load_config(args.config)
  # Time the cooperative step, not the flow-only pretraining updates.
  config.coopflow.pretrain_steps = 0
  if args.small:
    config.model.update(width=32, flow_scales=2, flow_steps=4, flow_hidden=32)
  batch_size = args.batch or config.data.batch_size
  dataset = dataset_for(config, batch_size, prefer_random=True)
  algo, mesh, state = fresh_state(config, dataset, init_examples=batch_size)
  sampler = sampler_for(algo, mesh, args.num)
  compile_s, times = compile_and_time(
      lambda i: sampler(state, jax.random.key(i), 0), args.repeats)
  best = min(times)
  one_step = Stepper(config, algo, mesh, state,
                     dataset.batch(0, batch_size, 0))
  step_s = timed(one_step, args.repeats)
  model = algo.model
  print(f'backend={jax.default_backend()} '
        f'device={jax.devices()[0].device_kind} config={args.config} '
        f'{"REDUCED (--small) " if args.small else ""}'
        f'ebm width={config.model.width} flow {config.model.flow_scales}x'
        f'{config.model.flow_steps} width {config.model.flow_hidden} '
        f'K={model.n_steps} image={dataset.example_shape}')
  print(f'sampler compile: {compile_s:.1f} s')
  print(f'sampling {args.num}: best {best:.3f} s, runs '
        f'{", ".join(f"{t:.3f}" for t in times)} s')
  print(f'train step (batch {batch_size}): {step_s:.3f} s, '
        f'{batch_size / step_s:,.1f} images/s')
  return 0


if __name__ == '__main__':
  sys.exit(main())
