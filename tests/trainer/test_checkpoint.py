"""Checkpoints: another model's is refused and kept; corrupt and half-written
ones are set aside."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax.trainer import loop as train
from coopjax.trainer import parallel
from coopjax.trainer import state as ts
from coopjax.trainer.checkpoint import Checkpointer, CheckpointMismatchError

from helpers.trainer import lowerings_of, tiny_config, params_of
from helpers import trainer_procs as tp


def test_a_replicated_state_is_saved_from_one_device_and_restored_on_all(
    tmp_path):
  mesh = parallel.make_mesh(jax.devices()[:4])
  # Shapes no other test saves: slicing them over the replicas would lower
  # new programs.
  params = {'net': {'w': jnp.linspace(-1, 1, 39).reshape(3, 13),
                    'b': jnp.arange(17.0)}}
  opt = {'net': ts.make_optimizer({'lr': 1e-2, 'warmup': 0})}
  state = parallel.replicated_state(params, {'net': {}}, opt, mesh)
  ckpt = Checkpointer(str(tmp_path))
  with lowerings_of('slice') as slices:
    ckpt.save(3, state)
    ckpt.wait()
  assert not slices
  restored = ckpt.restore(jax.tree_util.tree_map(jnp.zeros_like, state))
  jax.tree_util.tree_map(np.testing.assert_array_equal,
                         jax.device_get(restored), jax.device_get(state))
  for got, want in zip(jax.tree_util.tree_leaves(restored),
                       jax.tree_util.tree_leaves(state)):
    assert got.sharding == want.sharding


@pytest.mark.slow
def test_checkpoint_of_another_model_is_refused_and_kept(tmp_path):
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(tiny_config(steps=2), workdir)
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  before = {f: os.path.getmtime(os.path.join(ckpt_dir, f))
            for f in os.listdir(ckpt_dir)}
  other = tiny_config()
  other.model.width = 16
  with pytest.raises(CheckpointMismatchError, match='shape'):
    # Past the config guard (trainer/test_workdir.py), the checkpoint check
    # refuses.
    train.train_and_evaluate(other, workdir, allow_config_change=True)
  after = {f: os.path.getmtime(os.path.join(ckpt_dir, f))
           for f in os.listdir(ckpt_dir)}
  assert before == after


@pytest.mark.slow
def test_corrupt_and_half_written_checkpoints_are_set_aside(tmp_path, capfd):
  workdir = str(tmp_path / 'b')
  # The run to damage is also the reference: the resumed run must end where
  # it ended.
  straight = params_of(train.train_and_evaluate(tiny_config(), workdir))
  ckpts = os.path.join(workdir, 'checkpoints')
  for root, _, files in os.walk(os.path.join(ckpts, '4', 'default')):
    for f in files:
      with open(os.path.join(root, f), 'wb') as fh:
        fh.write(b'not a checkpoint')
  partial = os.path.join(ckpts, '6.orbax-checkpoint-tmp-1234567')
  os.makedirs(partial)
  capfd.readouterr()
  resumed = train.train_and_evaluate(tiny_config(), workdir)
  err = capfd.readouterr().err
  assert 'checkpoints/4 cannot be read' in err
  assert 'half-written' in err
  bad = sorted(os.listdir(os.path.join(workdir, 'checkpoints_bad')))
  assert [b.split('.')[0] for b in bad] == ['4', '6']
  assert tp.checkpoint_steps(workdir) == [2, 4]  # resumed from 2, re-saved 4
  tp.assert_trees_equal(params_of(resumed), straight)
