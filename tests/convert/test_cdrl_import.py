"""Importing an authors' CDRL checkpoint into a workdir that coopjax samples from.

tests/fixtures/cdrl/authors_small.pth.tar (tools/make_cdrl_fixtures.py) is a
random-weight checkpoint in the layout of the authors' training script:
DDP names, torch_ema states, optimiser and scheduler states, a 1-channel
8x8 EBM and U-Net of one resolution each.
"""

import os

import jax
import numpy as np
import pytest

from coopjax import data, registry
from coopjax.config import cdrl as base
from coopjax.convert import cdrl as convert
from coopjax.convert import torch_file
from coopjax.trainer import state as ts
from coopjax.trainer.checkpoint import Checkpointer
from helpers import REPO

CHECKPOINT = os.path.join(REPO, 'tests', 'fixtures', 'cdrl',
                          'authors_small.pth.tar')


def small_config(tmp_path):
  c = base.get_config()
  images = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 1))
  np.save(tmp_path / 'images.npy', images.astype(np.float32))
  c.data.update(name='array', kind='images', path=str(tmp_path / 'images.npy'),
                image_size=8, channels=1, batch_size=4, random_flip=False)
  c.model.update(width=8, temb_dim=8, mults=(1,), blocks_per_res=1,
                 init_width=8, init_mults=(1,), init_blocks=1, init_attn=(),
                 init_dropout=0.0, langevin_steps=2, tweedie=False)
  c.sample.update(num=4, chunk=4)
  return c


def restore_as_the_trainer_does(config, workdir):
  """The workdir's state restored into the structure the algorithm builds
  (``loop._setup`` without compiling the initialisation), and the algorithm."""
  dataset = data.load(config.data, config.seed)
  algo = registry.build(config, dataset)
  params, stats = jax.eval_shape(algo.init_variables, jax.random.key(0),
                                 dataset.batch(0, 4, 0))
  target = jax.eval_shape(lambda p, s: ts.create(p, s, algo.optimizers),
                          params, stats)
  ckpt = Checkpointer(workdir)
  state = ckpt.restore(target)
  ckpt.close()
  return algo, state


@pytest.mark.slow  # compiles the sampler
def test_import_then_sample(tmp_path):
  config = small_config(tmp_path)
  workdir = str(tmp_path / 'run')
  convert.import_checkpoint(config, CHECKPOINT, workdir)
  algo, state = restore_as_the_trainer_does(config, workdir)
  assert int(state.step) == 7  # torch_ema's num_updates
  # the stored arrays are the file's, mapped: a plain one, an EMA one, u
  raw = torch_file.load(CHECKPOINT)
  sd = torch_file.flatten(raw['pi_state_dict'])
  np.testing.assert_array_equal(state.params['ebm']['stem']['kernel'],
                                sd['module_list.0.weight_orig'].transpose(
                                    2, 3, 1, 0))
  np.testing.assert_array_equal(state.stats['ebm']['stem']['u'],
                                sd['module_list.0.weight_u'])
  shadow = raw['p_ema_state_dict']['shadow_params']
  np.testing.assert_array_equal(state.ema['init']['init_conv']['bias'],
                                shadow[1])  # init_conv: weight, bias
  assert not np.array_equal(state.ema['init']['init_conv']['bias'],
                            state.params['init']['init_conv']['bias'])
  x, _ = jax.jit(algo.sampler(4))(state, jax.random.key(1), 0)
  assert x.shape == (4, 8, 8, 1) and np.all(np.isfinite(x))


def test_a_different_config_or_a_used_workdir_is_refused(tmp_path):
  config = small_config(tmp_path)
  config.model.width = 16
  workdir = str(tmp_path / 'run')
  with pytest.raises(convert.CheckpointFormatError,
                     match=r'params/ebm/first_0/conv1/bias: \(8,\) in the '
                     r'checkpoint, \(16,\) in the config'):
    convert.import_checkpoint(config, CHECKPOINT, workdir)
  assert not os.path.exists(os.path.join(workdir, 'config.json'))
  config = small_config(tmp_path)
  convert.import_checkpoint(config, CHECKPOINT, workdir)
  with pytest.raises(FileExistsError, match='already holds checkpoint 7'):
    convert.import_checkpoint(config, CHECKPOINT, workdir)
  with pytest.raises(convert.CheckpointFormatError, match='lacks'):
    convert.import_checkpoint(
        config, os.path.join(REPO, 'tests', 'fixtures', 'torch_file',
                             'small.pt'), str(tmp_path / 'other'))


def test_the_mapping_table():
  rule = convert.module_path
  assert rule('module_list.0', 8) == 'stem'
  assert rule('module_list.1.conv1', 8) == 'first_0/conv1'
  assert rule('module_list.2.conv1', 8) == 'rest_0#0/conv1'
  assert rule('module_list.10.short_cut', 8) == 'first_1/short_cut'
  assert rule('module_list.35', 8) == 'rest_3#6'
  with pytest.raises(convert.CheckpointFormatError, match='pooling'):
    rule('module_list.9.conv1', 8)
  assert rule('downs.1.2.mlp.1', 0) == 'downs_1_2/mlp'
  assert rule('ups.0.3.to_qkv', 0) == 'ups_0_3/to_qkv'
  assert rule('mid_block2.mlp.1', 0) == 'mid_block2/mlp'
  assert rule('time_mlp.3', 0) == 'time_mlp_3'
  assert rule('y_mlp.0', 0) == 'y_mlp'
  assert rule('temb_map1', 8) == 'temb_map1'
