"""Training throughput and posterior-inference time of the latent flow prior.

    python bench/latent_flow.py                                    # digits
    python bench/latent_flow.py --config=configs/latent_flow_svhn.py --steps=5

Prints the training images/s (the full jitted train step: K posterior
Langevin steps, generator and prior updates) and the time of the posterior
inference alone on one batch (K training steps with noise, and the
noise-free reconstruction of ``config.task.recon_steps`` steps). Without the
tfds data on disk, random images of the configured shape stand in.
"""

import argparse
import os
import sys

import jax

from coopjax import latent_flow, rng
from common import Stepper, dataset_for, fresh_state, load_config, timed  # pylint: disable=g-bad-import-order


def main():
  here = os.path.dirname(os.path.abspath(__file__))
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', default=os.path.join(
      here, '..', 'configs', 'latent_flow_digits.py'))
  parser.add_argument('--steps', type=int, default=10)
  args = parser.parse_args()
  config = load_config(args.config)
  batch = config.data.batch_size
  dataset = dataset_for(config, 2 * batch)
  algo, mesh, state = fresh_state(config, dataset, init_examples=batch)
  one_step = Stepper(config, algo, mesh, state, dataset.batch(0, batch, 0))
  x, key = one_step.batch, jax.random.key(0)
  step_s = timed(one_step, args.steps)
  model, params = algo.model, one_step.state.params
  keys = rng.example_keys(key, 0, batch)
  x_obs, mask = latent_flow.observed(x['x'])
  infer = jax.jit(lambda p, x: latent_flow.refine(model, p, x, keys, mask)[0])
  infer_s = timed(lambda: infer(params, x_obs), args.steps)
  recon_steps = int(config.task.recon_steps)
  recon = jax.jit(lambda p, x: latent_flow.reconstruct(model, p, x, keys,
                                                       recon_steps)[0])
  recon_s = timed(lambda: recon(params, x_obs), max(1, args.steps // 5))
  print(f'backend={jax.default_backend()} devices={jax.device_count()} '
        f'config={args.config} batch={batch} K={model.n_steps} '
        f'prior={config.model.prior} latent={model.latent_dim}')
  print(f'train step: {step_s:.4f} s/step = {batch / step_s:,.0f} images/s')
  print(f'posterior inference (K={model.n_steps}, one batch): '
        f'{infer_s * 1e3:.1f} ms')
  print(f'reconstruction ({recon_steps} noise-free steps, one batch): '
        f'{recon_s * 1e3:.1f} ms')
  return 0


if __name__ == '__main__':
  sys.exit(main())
