"""The trainer end to end on a tiny checkerboard model: files, resume, bad input."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from coopjax.trainer import loop as train
from coopjax.trainer import nonfinite
from coopjax.trainer.checkpoint import CheckpointMismatchError

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'configs'))
import checkerboard  # pylint: disable=g-import-not-at-top,wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(**train_overrides):
  c = checkerboard.get_config()
  c.data.batch_size = 16
  c.data.num_points = 500
  c.model.width, c.model.mults, c.model.temb_dim = 8, (1, 2), 16
  c.model.init_width = 32
  c.model.langevin_steps = c.sample.langevin_steps = 2
  c.optim.ebm.warmup = c.optim.init.warmup = 0
  c.train.update(steps=4, log_every=2, ckpt_every=2, sample_every=4)
  c.train.update(**train_overrides)
  c.sample.num = c.eval.num_samples = 64
  c.sample.grid_k = 1
  return c


def params_of(state):
  return jax.device_get(state.params)


def test_run_writes_everything(tmp_path):
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(tiny_config(), workdir)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2', '4']
  lines = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  assert [l['step'] for l in lines if 'ebm_loss' in l] == [2, 4]
  assert any('tv_samples' in l for l in lines)
  assert os.listdir(os.path.join(workdir, 'tensorboard'))
  npz = np.load(os.path.join(workdir, 'samples', 'step_4.npz'))
  assert npz['x'].shape == (64, 2)
  assert npz['density'].shape == (34, 34) and npz['grid'].shape == (34, 34, 2)
  np.testing.assert_allclose(npz['density'].sum(), 1.0, rtol=1e-5)
  assert os.path.getsize(os.path.join(workdir, 'samples', 'step_4.png')) > 1000
  result = train.evaluate(tiny_config(), workdir)
  assert result['step'] == 4 and 0.0 <= result['tv_samples'] <= 1.0
  assert json.load(open(os.path.join(workdir, 'eval.json')))['step'] == 4
  train.sample(tiny_config(), workdir)
  assert os.path.exists(os.path.join(workdir, 'samples', 'sample_4.npz'))


def test_interrupted_run_resumes_to_the_same_result(tmp_path):
  straight = train.train_and_evaluate(tiny_config(), str(tmp_path / 'a'))
  workdir = str(tmp_path / 'b')
  train.train_and_evaluate(tiny_config(steps=2), workdir)  # "interrupted"
  resumed = train.train_and_evaluate(tiny_config(), workdir)
  assert int(resumed.step) == 4
  jax.tree_util.tree_map(np.testing.assert_array_equal, params_of(straight),
                         params_of(resumed))


def test_checkpoint_of_another_model_is_refused_and_kept(tmp_path):
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(tiny_config(steps=2), workdir)
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  before = {f: os.path.getmtime(os.path.join(ckpt_dir, f))
            for f in os.listdir(ckpt_dir)}
  other = tiny_config()
  other.model.width = 16
  with pytest.raises(CheckpointMismatchError, match='shape'):
    # Past the config guard (test_faults.py), the checkpoint check refuses.
    train.train_and_evaluate(other, workdir, allow_config_change=True)
  after = {f: os.path.getmtime(os.path.join(ckpt_dir, f))
           for f in os.listdir(ckpt_dir)}
  assert before == after


def test_nonfinite_loss_stops_with_step_and_keeps_checkpoint(tmp_path):
  workdir = str(tmp_path / 'run')
  config = tiny_config(steps=20, ckpt_every=1)
  config.optim.ebm.lr = config.optim.init.lr = 1e30  # diverges within steps
  with pytest.raises(nonfinite.NonFiniteError, match=r'at step (\d+)') as err:
    train.train_and_evaluate(config, workdir)
  failed = int(str(err.value).split('at step ')[1].split(';')[0])
  steps = sorted(int(s) for s in os.listdir(os.path.join(workdir,
                                                          'checkpoints')))
  assert steps and steps[-1] == failed - 1


def test_unknown_dataset_lists_known_ones(tmp_path):
  config = tiny_config()
  config.data.name = 'moons'
  with pytest.raises(ValueError, match='checkerboard'):
    train.train_and_evaluate(config, str(tmp_path / 'run'))


def run_cli(*args):
  return subprocess.run(
      [sys.executable, '-m', 'coopjax.main', *args], cwd=REPO,
      capture_output=True, text=True, timeout=300, check=False)


def test_cli_refuses_unknown_key_and_wrong_type(tmp_path):
  base = ['--config=configs/checkerboard.py', f'--workdir={tmp_path}/run']
  out = run_cli(*base, '--config.train.stepz=3')
  assert out.returncode != 0 and 'stepz' in out.stderr
  out = run_cli(*base, '--config.train.steps=many')
  assert out.returncode != 0 and 'steps' in out.stderr
  assert not os.path.exists(f'{tmp_path}/run')
