"""Train-step throughput of CDRL against the number of (fake CPU) devices.

    python bench/scaling.py                           # 1, 2, 4, 8 devices
    python bench/scaling.py --devices=1,2,4 --batch=1024 --steps=10
    python bench/scaling.py --per_device_batch=128    # weak scaling

Each device count runs in a fresh process (``XLA_FLAGS=
--xla_force_host_platform_device_count=N`` must be set before JAX starts) on
``configs/checkerboard.py``. With fake CPU devices all "devices" share the same
cores, so this checks that the data-parallel step is correct and what its
overhead is, not a speed-up; on real accelerators pass ``--fake_cpu=0`` and
``--devices`` counts the machine has (``jax.devices()[:n]`` are used).
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(n_devices: int, batch: int, steps: int, config_spec: str) -> dict:
  """Runs in the child process: steps/s of the train step on ``n_devices``."""
  import jax  # pylint: disable=g-import-not-at-top
  from coopjax import data  # pylint: disable=g-import-not-at-top
  from coopjax.trainer import parallel  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, HERE)
  from common import Stepper, fresh_state, load_config, timed  # pylint: disable=g-import-not-at-top

  config = load_config(config_spec)
  config.data.batch_size = batch
  dataset = data.load(config.data, config.seed)
  mesh = parallel.make_mesh(jax.devices()[:n_devices])
  parallel.check_batch_size(batch, mesh)
  algo, mesh, state = fresh_state(config, dataset, mesh)
  one_step = Stepper(config, algo, mesh, state, dataset.batch(0, batch, 0))

  start = time.perf_counter()
  jax.block_until_ready(one_step())
  compile_s = time.perf_counter() - start
  step_s = timed(one_step, steps)
  return dict(backend=jax.default_backend(), devices=n_devices, batch=batch,
              compile_s=compile_s, step_s=step_s,
              examples_per_s=batch / step_s)


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--devices', default='1,2,4,8')
  parser.add_argument('--batch', type=int, default=512,
                      help='global batch (strong scaling)')
  parser.add_argument('--per_device_batch', type=int, default=0,
                      help='if set, global batch = this x devices (weak)')
  parser.add_argument('--steps', type=int, default=10)
  parser.add_argument('--config', default=os.path.join(
      HERE, '..', 'configs', 'checkerboard.py'))
  parser.add_argument('--fake_cpu', type=int, default=1,
                      help='1: N fake CPU devices; 0: the real backend')
  parser.add_argument('--child', type=int, default=0, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    print(json.dumps(measure(args.child, args.batch, args.steps,
                             args.config)))
    return 0
  counts = [int(c) for c in args.devices.split(',')]
  rows = []
  for n in counts:
    batch = args.per_device_batch * n if args.per_device_batch else args.batch
    env = dict(os.environ)
    if args.fake_cpu:
      env['JAX_PLATFORMS'] = 'cpu'
      env['XLA_FLAGS'] = (env.get('XLA_FLAGS', '') +
                          f' --xla_force_host_platform_device_count={n}')
    out = subprocess.run(
        [sys.executable, __file__, f'--child={n}', f'--batch={batch}',
         f'--steps={args.steps}', f'--config={args.config}'],
        env=env, capture_output=True, text=True, timeout=900, check=True)
    rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
  base = rows[0]['examples_per_s'] / rows[0]['devices']
  print('| devices | global batch | compile (s) | step (s) | examples/s | '
        'scaling efficiency |')
  print('| --- | --- | --- | --- | --- | --- |')
  for r in rows:
    eff = r['examples_per_s'] / (base * r['devices'])
    print(f"| {r['devices']} ({r['backend']}) | {r['batch']} | "
          f"{r['compile_s']:.1f} | {r['step_s']:.4f} | "
          f"{r['examples_per_s']:,.0f} | {eff:.2f} |")
  return 0


if __name__ == '__main__':
  sys.exit(main())
