"""One command for every accelerator figure: first step, compile, images/s,
sampling time and peak memory of each algorithm at its full (paper) size.

    python bench/accelerator.py                      # GPU / TPU: batches 32,128,256
    python bench/accelerator.py --batches=2 --num_samples=2   # the CPU proxy
    python bench/accelerator.py --only=cdrl_f32,coopflow --markdown

``--xla_flags`` passes XLA options to the entries' processes, e.g.
``--xla_flags=--xla_gpu_autotune_level=0`` to see what cuDNN's autotuning
adds to the compile on a GPU.

Each entry runs in its own process (a fresh JAX, so its "first step" figure
is what a user waits for: imports, building the networks, tracing, compiling
and one step), with ``--timeout`` seconds before it is abandoned and reported
as such, with the last phase it finished (``last: compiled batch 32 at
95.2 s``). Networks are freshly initialised at the config's size and fed random
images: the cost does not depend on the weights or the pixels. Printed per
entry:

- ``first step``: seconds from the process's start to the end of the first
  train step at the first batch size (what ``python -m coopjax.main`` costs
  before its first step, less data loading);
- ``compile``: seconds of the first call at each batch size (the JSON line
  splits it into ``lower_s``, tracing and lowering, and ``xla_compile_s``);
- ``img/s``: training images per second at each batch size (median of
  ``--steps`` steps, per device: one device is used);
- ``sample``: seconds for ``--num_samples`` samples (after their compile);
- ``peak``: peak device memory (GiB) where the backend reports it, else the
  process's peak resident memory.

On the CPU it defaults to batch 2 and 2 samples, the proxy the issues quote.
Record the figures in ``bench/RESULTS.md`` with the device and the date.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = os.path.join(HERE, '..', 'configs')

# name -> (config spec, overrides applied to the config)
ENTRIES = {
    'cdrl_f32': ('cifar10.py', {}),
    'cdrl_bf16': ('cifar10.py', {'model.dtype': 'bfloat16'}),
    'drl': ('cifar10.py:drl', {}),
    'coopflow': ('coopflow_cifar10.py', {}),
    'latent_flow': ('latent_flow_cifar10.py', {}),
}


def _peak_gib() -> float:
  import jax  # pylint: disable=g-import-not-at-top
  stats = jax.devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    return stats['peak_bytes_in_use'] / 2**30
  import resource  # pylint: disable=g-import-not-at-top
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _event(start: float, event: str, **fields) -> None:
  """Prints one progress line (the parent keeps the last one it saw)."""
  print(json.dumps({'event': event,
                    't': round(time.perf_counter() - start, 1), **fields}),
        flush=True)


def measure(name: str, batches, steps: int, num_samples: int) -> dict:
  """Runs in the child process; returns the entry's figures.

  Prints an ``event`` line as each phase ends (imports, state built, and at
  each batch size the train step's lowering, XLA compile and first call),
  so an entry cut off by ``--timeout`` still tells where its time went.
  """
  start = time.perf_counter()
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, HERE)
  import common  # pylint: disable=g-import-not-at-top
  _event(start, 'imported')

  spec, overrides = ENTRIES[name]
  config = common.load_config(os.path.join(CONFIGS, spec))
  for field, value in overrides.items():
    section, key = field.split('.')
    config[section][key] = value
  dataset = common.dataset_for(config, max(max(batches), 8),
                               prefer_random=True)
  algo, mesh, state = common.fresh_state(config, dataset)
  jax.block_until_ready(state)
  _event(start, 'state built')
  out = {'entry': name, 'config': spec, 'device': jax.devices()[0].device_kind,
         'backend': jax.default_backend(), 'compile_s': {}, 'img_per_s': {},
         'lower_s': {}, 'xla_compile_s': {}}
  for i, batch in enumerate(batches):
    config.data.batch_size = batch
    stepper = common.Stepper(config, algo, mesh, state,
                             dataset.batch(0, batch, 0))
    t0 = time.perf_counter()
    lowered = stepper.lower()
    out['lower_s'][batch] = round(time.perf_counter() - t0, 2)
    _event(start, 'lowered', batch=batch, s=out['lower_s'][batch])
    t0 = time.perf_counter()
    lowered.compile()  # cached: the first call below runs it
    out['xla_compile_s'][batch] = round(time.perf_counter() - t0, 2)
    _event(start, 'compiled', batch=batch, s=out['xla_compile_s'][batch])
    compile_s, times = common.compile_and_time(lambda _: stepper(), steps)
    compile_s += out['lower_s'][batch] + out['xla_compile_s'][batch]
    if i == 0:
      out['first_step_s'] = round(time.perf_counter() - start -
                                  float(np.sum(times)), 1)
    state = stepper.state
    out['compile_s'][batch] = round(compile_s, 2)
    out['img_per_s'][batch] = round(batch / float(np.median(times)), 1)
    _event(start, 'timed', batch=batch, img_per_s=out['img_per_s'][batch])
  sampler = common.sampler_for(algo, mesh, num_samples)
  compile_s, times = common.compile_and_time(
      lambda i: sampler(state, jax.random.key(i), 0), 2)
  out['sample_compile_s'] = round(compile_s, 2)
  out['sample_s'] = round(min(times), 4)
  out['num_samples'] = num_samples
  out['peak_gib'] = round(_peak_gib(), 2)
  return out


def _last_event(stdout) -> str:
  """`` (last: <event> [batch B] at T s)`` from a child's partial output."""
  if isinstance(stdout, bytes):
    stdout = stdout.decode(errors='replace')
  last = None
  for line in (stdout or '').splitlines():
    if line.startswith('{') and '"event"' in line:
      try:
        last = json.loads(line)
      except ValueError:
        pass
  if last is None:
    return ' (no phase finished)'
  batch = f" batch {last['batch']}" if 'batch' in last else ''
  return f" (last: {last['event']}{batch} at {last['t']} s)"


def _row(r: dict, batches) -> str:
  if 'error' in r:
    return f"| {r['entry']} | {r['error']} |" + ' |' * (2 * len(batches) + 3)
  cells = [r['entry'], f"{r['first_step_s']:.1f}"]
  cells += [f"{r['compile_s'].get(str(b), r['compile_s'].get(b, '-'))}"
            for b in batches]
  cells += [f"{r['img_per_s'].get(str(b), r['img_per_s'].get(b, '-'))}"
            for b in batches]
  cells += [f"{r['sample_s']} (+{r['sample_compile_s']} compile)",
            f"{r['peak_gib']}"]
  return '| ' + ' | '.join(cells) + ' |'


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--only', default=','.join(ENTRIES),
                      help='comma-separated entries: ' + ', '.join(ENTRIES))
  parser.add_argument('--batches', default='',
                      help='train batch sizes (default 32,128,256; CPU: 2)')
  parser.add_argument('--num_samples', type=int, default=0,
                      help='samples to time (default 100; CPU: 2)')
  parser.add_argument('--steps', type=int, default=5)
  parser.add_argument('--timeout', type=float, default=150,
                      help='seconds before an entry is abandoned')
  parser.add_argument('--xla_flags', default='',
                      help="extra XLA_FLAGS for the entries' processes, e.g. "
                      "'--xla_gpu_autotune_level=0'")
  parser.add_argument('--markdown', action='store_true',
                      help='also print a table for bench/RESULTS.md')
  parser.add_argument('--child', default='', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    batches = [int(b) for b in args.batches.split(',')]
    print(json.dumps(measure(args.child, batches, args.steps,
                             args.num_samples)))
    return 0

  import jax  # pylint: disable=g-import-not-at-top
  on_cpu = jax.default_backend() == 'cpu'
  batches = args.batches or ('2' if on_cpu else '32,128,256')
  num = args.num_samples or (2 if on_cpu else 100)
  print(f'device={jax.devices()[0].device_kind} backend={jax.default_backend()}'
        f' batches={batches} samples={num} date={time.strftime("%Y-%m-%d")}',
        flush=True)
  del jax
  results = []
  env = dict(os.environ)
  if args.xla_flags:
    env['XLA_FLAGS'] = (env.get('XLA_FLAGS', '') + ' ' +
                        args.xla_flags).strip()
  for name in args.only.split(','):
    if name not in ENTRIES:
      parser.error(f'unknown entry {name!r}; known: {", ".join(ENTRIES)}')
    cmd = [sys.executable, os.path.abspath(__file__), f'--child={name}',
           f'--batches={batches}', f'--num_samples={num}',
           f'--steps={args.steps}']
    start = time.perf_counter()
    try:
      proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                            timeout=args.timeout, check=False)
      lines = [l for l in proc.stdout.splitlines()
               if l.startswith('{') and '"event"' not in l]
      if proc.returncode or not lines:
        tail = (proc.stderr.strip().splitlines() or ['no output'])[-1]
        result = {'entry': name, 'error': f'failed: {tail[:160]}' +
                  _last_event(proc.stdout)}
      else:
        result = json.loads(lines[-1])
    except subprocess.TimeoutExpired as e:
      result = {'entry': name,
                'error': f'no result within {args.timeout:.0f} s' +
                         _last_event(e.stdout)}
    result['wall_s'] = round(time.perf_counter() - start, 1)
    results.append(result)
    print(json.dumps(result), flush=True)
  if args.markdown:
    bs = batches.split(',')
    print('\n| entry | first step s | ' +
          ' | '.join(f'compile s @{b}' for b in bs) + ' | ' +
          ' | '.join(f'img/s @{b}' for b in bs) +
          f' | {num} samples s | peak GiB |')
    print('|' + ' --- |' * (2 * len(bs) + 4))
    for r in results:
      print(_row(r, bs))
  return 0


if __name__ == '__main__':
  sys.exit(main())
