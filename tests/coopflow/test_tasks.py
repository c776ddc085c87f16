"""coopjax.coopflow.tasks: inpainting and interpolation through the
algorithm's task table."""

import os

import jax
import numpy as np
import pytest

from coopjax import data, registry
from coopjax.trainer import state as ts

from helpers import config_module

# Over ~5 s each on 2 CPU cores (compiling); deselected by -m "not slow".
pytestmark = pytest.mark.slow


coopflow_digits = config_module('coopflow_digits')


@pytest.fixture(scope='module')
def tiny():
  """One tiny model shared by the interpolation tests; each test sets the
  task options it needs (the tasks read them at call time)."""
  c = coopflow_digits.get_config()
  c.data.update(name='array', kind='images', image_size=4)
  c.model.update(width=4, mults=(1,), flow_scales=1, flow_steps=1,
                 flow_hidden=4, langevin_steps=2)
  c.task.update(num=6, interp_points=4, recon_iters=3)
  dataset = data.images.random_images((4, 4, 1), 40)
  algo = registry.build(c, dataset)
  params, stats = algo.init_variables(jax.random.key(0), dataset.batch(0, 8, 0))
  return algo, ts.create(params, stats, algo.optimizers), dataset


def test_inpaint_task_keeps_known_pixels_and_writes_its_files(tmp_path, tiny):
  algo, state, dataset = tiny
  algo.config.task.update(recon_space='latent', mask='square')
  prefix = str(tmp_path / 'inpaint')
  out = algo.tasks['inpaint'](state, dataset, prefix)
  npz = np.load(prefix + '.npz')
  # The latent fit to the known pixels makes progress, and the figure
  # reported is its last loss.
  losses = npz['losses']
  assert len(losses) == 4 and losses[-1] < losses[0]  # start + 3 iterations
  np.testing.assert_allclose(out['known_pixel_mse_fit'], losses[-1])
  mask, x, obs = npz['mask'], npz['x'], npz['observed']
  np.testing.assert_array_equal(x[mask], obs[mask])
  assert (~mask).any() and not np.array_equal(x[~mask], obs[~mask])
  np.testing.assert_allclose(out['masked_pixel_mse'],
                             np.mean((x[~mask] - obs[~mask]) ** 2), rtol=1e-5)
  assert os.path.getsize(prefix + '.png') > 100


@pytest.mark.parametrize('space', ['x0', 'latent'])
def test_interpolation_ends_are_the_reconstructions(tmp_path, tiny, space):
  # The authors' interpolation: the ends are the flow latents of the test
  # images' reconstructions, so the revised ends reproduce the chain ends of
  # the x0 descent (its x_K). A latent fit's chain had noise, so there the
  # figure is only checked against its definition.
  from coopjax.coopflow import tasks
  algo, state, dataset = tiny
  algo.config.task.update(recon_space=space, interp_from='reconstruction')
  out = algo.tasks['interpolate'](state, dataset, str(tmp_path / 'i'))
  npz = np.load(str(tmp_path / 'i.npz'))
  test = dataset.test_batch(6)['x']
  _, fitted, _ = tasks._fit(algo, state, test, salt=13)
  ends = np.concatenate([npz['revised'][:, 0], npz['revised'][:, -1]])
  assert npz['revised'].shape == (3, 4, 4, 4, 1)
  if space == 'x0':
    np.testing.assert_allclose(ends, fitted, atol=1e-4)
  np.testing.assert_allclose(out['endpoint_mse'],
                             np.mean((ends - test) ** 2), rtol=1e-5)
  assert 'endpoint_max_abs_error' not in out
  # The ends are not the images themselves (3 descent steps from noise).
  assert out['endpoint_mse'] > 1e-3


def test_interpolation_from_images_reproduces_them(tmp_path, tiny):
  algo, state, dataset = tiny
  algo.config.task.interp_from = 'images'
  out = algo.tasks['interpolate'](state, dataset, str(tmp_path / 'i'))
  flow = np.load(str(tmp_path / 'i.npz'))['flow']
  test = dataset.test_batch(6)['x']
  np.testing.assert_allclose(flow[:, 0], test[:3], atol=1e-4)
  np.testing.assert_allclose(flow[:, -1], test[3:], atol=1e-4)
  assert out['endpoint_max_abs_error'] < 1e-4
  algo.config.task.interp_from = 'pixels'
  with pytest.raises(ValueError, match="interp_from='pixels'"):
    algo.tasks['interpolate'](state, dataset, str(tmp_path / 'j'))
