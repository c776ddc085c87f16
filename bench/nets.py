"""Forward and forward+backward time of the image networks at a small batch.

    python bench/nets.py                                   # CIFAR-10 default, batch 8
    python bench/nets.py --config=configs/cifar10.py:large --batch=32
    python bench/nets.py --dtype=bfloat16

For the config's EBM (``f_theta(x)``; backward = the gradient wrt both x and
the parameters, as a training step needs) and initializer U-Net (backward =
wrt the parameters, dropout on), prints the parameter count, compile time,
seconds per call and images per second on whatever backend runs it. Figures
only, no assertions.
"""

import argparse
import os
import time

import jax
import jax.numpy as jnp

from coopjax import models
from common import load_config, timed  # pylint: disable=g-bad-import-order


def _bench(name, fn, args, batch, repeats):
  jitted = jax.jit(fn)
  start = time.perf_counter()
  jax.block_until_ready(jitted(*args))
  compile_s = time.perf_counter() - start
  seconds = timed(lambda: jitted(*args), repeats)
  print(f'{name:<22} compile {compile_s:6.1f} s   {seconds * 1e3:9.2f} ms   '
        f'{batch / seconds:10.1f} images/s', flush=True)


def main():
  here = os.path.dirname(os.path.abspath(__file__))
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', default=os.path.join(here, '..', 'configs',
                                                       'cifar10.py'))
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--dtype', default='')
  args = parser.parse_args()
  config = load_config(args.config)
  if args.dtype:
    config.model.dtype = args.dtype
  size, channels = config.data.image_size, config.data.channels
  key = jax.random.key(0)
  x = jax.random.normal(key, (args.batch, size, size, channels))
  logsnr = jnp.linspace(-5.0, 9.0, args.batch)
  print(f'backend={jax.default_backend()} device={jax.devices()[0].device_kind}'
        f' config={args.config} dtype={config.model.dtype} batch={args.batch}'
        f' image={size}x{size}x{channels}')

  ebm = models.build_ebm(config.model)
  ebm_vars = jax.jit(ebm.init)(key, x, logsnr)
  print(f'EBM {models.describe({"params": ebm_vars["params"]})}')
  energy = lambda v, z: ebm.apply(v, z, logsnr)

  def ebm_grads(v, z):
    return jax.grad(lambda p, z: jnp.sum(energy({**v, 'params': p}, z)),
                    argnums=(0, 1))(v['params'], z)

  _bench('ebm forward', energy, (ebm_vars, x), args.batch, args.repeats)
  _bench('ebm forward+backward', ebm_grads, (ebm_vars, x), args.batch,
         args.repeats)

  unet = models.build_initializer(config.model)
  if unet is None:
    return
  params = jax.jit(unet.init)(key, x, logsnr)['params']
  print(f'initializer {models.describe({"params": params})}')
  drop_keys = jax.random.split(key, args.batch)
  mean = lambda p, z: unet.apply({'params': p}, z, logsnr)

  def unet_grads(p, z):
    return jax.grad(lambda p: jnp.sum(jnp.square(unet.apply(
        {'params': p}, z, logsnr, dropout_keys=drop_keys))))(p)

  _bench('init forward', mean, (params, x), args.batch, args.repeats)
  _bench('init forward+backward', unet_grads, (params, x), args.batch,
         args.repeats)


if __name__ == '__main__':
  main()
