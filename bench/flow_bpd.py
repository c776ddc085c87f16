"""Flow++ against Glow on the 8x8 digits: test bits per dimension.

    python bench/flow_bpd.py                 # 600 updates each, ~minutes on a CPU
    python bench/flow_bpd.py --steps=50 --flows=glow

Trains each flow alone by maximum likelihood (``configs/coopflow_digits.py
:pretrain``: batch 64, Adam 1e-3, gradient clip 1) for ``--steps`` updates, then
prints its parameter count, the training wall time and the test bits/dim
averaged over ``--draws`` dequantisation draws. Both flows model the digits
as 8-bit images (the 17 grey levels sit on the 256-level grid): the Glow
with uniform dequantisation at 256 bins, Flow++ with its own variational
dequantiser, so both figures are upper bounds on the same discrete negative
log-likelihood (8 bits/dim for a uniform density).
"""

import argparse
import os
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from common import load_config  # pylint: disable=g-bad-import-order

from coopjax import flows, rng
from coopjax.coopflow.losses import dequantize
from coopjax.coopflow.model import flow_log_prob
from coopjax.trainer import loop

# Flow++ at the digits' size: the authors' two scales of couplings, narrower.
FLOWPP = dict(flow='flowpp', flow_hidden=16, flowpp_blocks=1,
              flowpp_components=4, flowpp_dequant_blocks=1, flowpp_attn=True,
              dequant_bins=0)
GLOW = dict(flow='glow', dequant_bins=256)


def test_bits_per_dim(algo, params, x, draws: int, key) -> float:
  """Mean test bits/dim (256 levels) over ``draws`` dequantisation draws."""
  model = algo.model
  dims = int(np.prod(x.shape[1:]))

  @jax.jit
  def one(k):
    keys = jax.random.split(k, len(x))
    y = dequantize(model, keys, x, snap=True)
    lp = flow_log_prob(model, params, y, rng.split_each(keys, 2)[1]
                       if getattr(model.flow, 'stochastic', False) else None)
    return jnp.mean(flows.bits_per_dim(lp, dims, 256))

  return float(np.mean([one(k) for k in jax.random.split(key, draws)]))


def main():
  here = os.path.dirname(os.path.abspath(__file__))
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', default=os.path.join(
      here, '..', 'configs', 'coopflow_digits.py') + ':pretrain')
  parser.add_argument('--steps', type=int, default=600)
  parser.add_argument('--flows', default='glow,flowpp')
  parser.add_argument('--draws', type=int, default=4)
  parser.add_argument('--workdir', default='',
                      help='where the runs go (default: a temporary folder)')
  args = parser.parse_args()
  root = args.workdir or tempfile.mkdtemp(prefix='flow_bpd_')
  print(f'device: {jax.devices()[0].device_kind}; runs in {root}')
  rows = []
  for name in args.flows.split(','):
    config = load_config(args.config)
    config.model.update(**{'glow': GLOW, 'flowpp': FLOWPP}[name])
    config.train.update(steps=args.steps, log_every=max(1, args.steps // 4),
                        ckpt_every=args.steps, sample_every=10 ** 9)
    config.sample.update(num=64, chunk=64)  # the run's closing sample report
    workdir = os.path.join(root, name)
    start = time.perf_counter()
    loop.train_and_evaluate(config, workdir)
    wall = time.perf_counter() - start
    dataset, algo, _, state = loop.restore_for_inference(config, workdir)
    x = dataset.test_batch(config.data.num_test)['x']
    # the digits on the 8-bit grid (they already are, up to rounding)
    x = np.round((x + 1.0) * 127.5) / 127.5 - 1.0
    params = state.ema['flow']
    count = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))
    bpd = test_bits_per_dim(algo, params, jnp.asarray(x), args.draws,
                            jax.random.key(1))
    rows.append((name, count, wall, bpd))
    print(f'{name}: {count:,} parameters, {args.steps} updates in {wall:.0f} s '
          f'(compile included), test bits/dim {bpd:.3f} over {len(x)} digits',
          flush=True)
  print('\n| flow | parameters | updates | wall (s) | test bits/dim |')
  print('| --- | --- | --- | --- | --- |')
  for name, count, wall, bpd in rows:
    print(f'| {name} | {count:,} | {args.steps} | {wall:.0f} | {bpd:.3f} |')
  return 0


if __name__ == '__main__':
  sys.exit(main())
