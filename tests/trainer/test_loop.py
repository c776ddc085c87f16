"""The train loop end to end on a tiny checkerboard model: files, resume,
bad input."""

import json
import os

import jax
import numpy as np
import pytest

from coopjax.trainer import loop as train

from helpers.trainer import tiny_config, params_of


@pytest.mark.slow
def test_run_writes_everything(tmp_path, monkeypatch):
  workdir = str(tmp_path / 'run')
  config = tiny_config(best_metric='tv_samples')
  train.train_and_evaluate(config, workdir)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2', '4']
  # the best checkpoint by tv_samples (one report: step 4), kept apart
  assert os.listdir(os.path.join(workdir, 'checkpoints_best')) == ['4']
  assert json.load(open(os.path.join(workdir, 'best.json')))['step'] == 4
  lines = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  assert [l['step'] for l in lines if 'ebm_loss' in l] == [2, 4]
  assert any('tv_samples' in l for l in lines)
  assert os.listdir(os.path.join(workdir, 'tensorboard'))
  npz = np.load(os.path.join(workdir, 'samples', 'step_4.npz'))
  assert npz['x'].shape == (64, 2)
  assert npz['density'].shape == (34, 34) and npz['grid'].shape == (34, 34, 2)
  np.testing.assert_allclose(npz['density'].sum(), 1.0, rtol=1e-5)
  assert os.path.getsize(os.path.join(workdir, 'samples', 'step_4.png')) > 1000
  # --mode=eval, here of the best checkpoint; an FID (stubbed, added to the
  # real figures) is written with its protocol.
  config.eval.update(checkpoint='best', fid_quantize='floor',
                     fid_reference='test', inception_path=__file__)
  report = train._write_report  # pylint: disable=protected-access
  monkeypatch.setattr(train, '_write_report',
                      lambda *a: {**report(*a), 'fid': 7.0})
  result = train.evaluate(config, workdir)
  assert result['step'] == 4 and 0.0 <= result['tv_samples'] <= 1.0
  assert json.load(open(os.path.join(workdir, 'eval.json'))) == result
  assert result['fid'] == 7.0 and result['fid_protocol'] == {
      'num_samples': 64, 'clamp': True, 'quantize': 'floor',
      'reference_split': 'test', 'num_real': 50000,
      'inception_weights': result['fid_protocol']['inception_weights']}
  assert len(result['fid_protocol']['inception_weights']) == 12
  train.sample(tiny_config(), workdir)
  assert os.path.exists(os.path.join(workdir, 'samples', 'sample_4.npz'))


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_result(tmp_path):
  straight = train.train_and_evaluate(tiny_config(), str(tmp_path / 'a'))
  workdir = str(tmp_path / 'b')
  train.train_and_evaluate(tiny_config(steps=2), workdir)  # "interrupted"
  resumed = train.train_and_evaluate(tiny_config(), workdir)
  assert int(resumed.step) == 4
  jax.tree_util.tree_map(np.testing.assert_array_equal, params_of(straight),
                         params_of(resumed))


@pytest.mark.slow
def test_unknown_dataset_lists_known_ones(tmp_path):
  config = tiny_config()
  config.data.name = 'moons'
  with pytest.raises(ValueError, match='checkerboard'):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
