"""coopjax.coopflow.tasks: inpainting through the algorithm's task table."""

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


def test_inpaint_task_keeps_known_pixels_and_writes_its_files(tmp_path):
  c = coopflow_digits.get_config()
  c.data.update(name='array', kind='images', image_size=4)
  c.model.update(width=4, mults=(1,), flow_scales=1, flow_steps=1,
                 flow_hidden=4, langevin_steps=2)
  c.task.update(num=6, recon_iters=3, mask='square')
  dataset = data.images.random_images((4, 4, 1), 40)
  algo = registry.build(c, dataset)
  params, stats = algo.init_variables(jax.random.key(0), dataset.batch(0, 8, 0))
  state = ts.create(params, stats, algo.optimizers)
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
