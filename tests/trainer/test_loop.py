"""The train loop end to end on a tiny checkerboard model: files, resume,
bad input."""

import json
import os

import jax
import numpy as np
import pytest

from coopjax.trainer import loop as train

from helpers import golden
from helpers.trainer import lowerings_of, params_of, tiny_config


@pytest.mark.slow
def test_run_writes_everything(tmp_path, monkeypatch, capsys):
  workdir = str(tmp_path / 'run')
  config = tiny_config(best_metric='tv_samples')
  with lowerings_of('train_step') as lowered:
    state = train.train_and_evaluate(config, workdir)
  # compiled once, in the background from the state's shapes while the
  # state was built: the real state matched them
  assert lowered == ['coopjax-precompile']
  out = capsys.readouterr().out
  assert 'First step (compilation included) done' in out
  assert (f'Wrote {workdir}/samples/step_4.npz, {workdir}/samples/step_4.png'
          in out)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2', '4']
  # the best checkpoint by tv_samples (one report: step 4), kept apart
  assert os.listdir(os.path.join(workdir, 'checkpoints_best')) == ['4']
  assert json.load(open(os.path.join(workdir, 'best.json')))['step'] == 4
  # Losses at steps 2 and 4 and parameter norms equal the golden figures
  # (regenerate: PYTHONPATH=. python tools/make_golden.py).
  golden.assert_matches(golden.summary(workdir, state))
  lines = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  assert [l['step'] for l in lines if 'ebm_loss' in l] == [2, 4]
  assert any('tv_samples' in l for l in lines)
  assert os.listdir(os.path.join(workdir, 'tensorboard'))
  npz = np.load(os.path.join(workdir, 'samples', 'step_4.npz'))
  assert npz['x'].shape == (64, 2)
  assert npz['density'].shape == (34, 34) and npz['grid'].shape == (34, 34, 2)
  # The figures logged are those of the files written (not just in range).
  from coopjax import data, metrics  # pylint: disable=g-import-not-at-top
  dataset = data.load(tiny_config().data, 0)
  logged = [l for l in lines if 'tv_samples' in l][-1]
  np.testing.assert_allclose(logged['tv_samples'],
                             metrics.sample_tv(npz['x'], dataset), rtol=1e-9)
  np.testing.assert_allclose(
      logged['tv_density'], metrics.density_tv(np.log(npz['density']),
                                               dataset), rtol=1e-5)
  assert os.path.getsize(os.path.join(workdir, 'samples', 'step_4.png')) > 1000
  # --mode=eval, here of the best checkpoint; an FID (stubbed, added to the
  # real figures) is written with its protocol.
  config.eval.update(checkpoint='best', fid_quantize='floor',
                     fid_reference='test', inception_path=__file__)
  report = train._write_report  # pylint: disable=protected-access
  monkeypatch.setattr(train, '_write_report',
                      lambda *a: {**report(*a), 'fid': 7.0})
  result = train.evaluate(config, workdir)
  assert result['step'] == 4
  evaluated = np.load(os.path.join(workdir, 'samples', 'eval_4.npz'))['x']
  np.testing.assert_allclose(result['tv_samples'],
                             metrics.sample_tv(evaluated, dataset), rtol=1e-9)
  assert json.load(open(os.path.join(workdir, 'eval.json'))) == result
  assert f'Wrote {workdir}/eval.json' in capsys.readouterr().out
  assert result['fid'] == 7.0 and result['fid_protocol'] == {
      'num_samples': 64, 'clamp': True, 'quantize': 'floor',
      'reference_split': 'test', 'num_real': 50000,
      'inception_weights': result['fid_protocol']['inception_weights']}
  assert len(result['fid_protocol']['inception_weights']) == 12
  train.sample(tiny_config(), workdir)
  assert os.path.exists(os.path.join(workdir, 'samples', 'sample_4.npz'))
  out = capsys.readouterr().out
  assert 'Loaded checkpoint of step 4' in out and 'Resumed' not in out
  assert f'{workdir}/samples/sample_4.png' in out


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


@pytest.mark.parametrize('name', ['log_every', 'ckpt_every', 'sample_every',
                                  'stop_check_every'])
def test_an_interval_below_one_is_refused_before_any_work(tmp_path, name):
  """Called from Python (not only through the command line's checks), a
  zero interval is one clear error and the workdir stays empty, rather than
  a ZeroDivisionError after the first step."""
  from coopjax import preflight  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / 'run'
  with pytest.raises(preflight.UsageError,
                     match=f'config.train.{name} must be >= 1'):
    train.train_and_evaluate(tiny_config(**{name: 0}), str(workdir))
  assert not workdir.exists() or not os.listdir(workdir)


def test_only_reporting_intervals_suggest_reporting_at_the_end():
  """A zero log interval is told how to log only at the end; a zero
  stop-check interval (no 'end' to move it to) is not."""
  from coopjax import preflight  # pylint: disable=g-import-not-at-top
  with pytest.raises(preflight.UsageError,
                     match=r'only at the end pass --config.train.log_every='):
    preflight.check_train_intervals(tiny_config(log_every=0))
  with pytest.raises(preflight.UsageError) as err:
    preflight.check_train_intervals(tiny_config(stop_check_every=0))
  assert str(err.value) == (
      "config.train.stop_check_every must be >= 1 (updates between the "
      "processes' agreements on a stop signal), got 0.")
