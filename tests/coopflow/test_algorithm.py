"""The 2-D CoopFlow algorithm end to end through the trainer: scratch, pre
(frozen pretrained flow), pretraining within one run."""

import json
import os

import jax
import numpy as np
import pytest

from coopjax.trainer import loop as train

from helpers.coopflow_models import tiny_config



def _differ(a, b) -> bool:
  """Whether two parameter trees differ in some array."""
  same = jax.tree_util.tree_map(np.array_equal, jax.device_get(a),
                                jax.device_get(b))
  return not all(jax.tree_util.tree_leaves(same))


@pytest.mark.slow
def test_two_d_coopflow_trains_end_to_end_and_pre_starts_from_the_flow(
    tmp_path):
  workdir = str(tmp_path / 'coop')
  state = train.train_and_evaluate(tiny_config(), workdir)
  assert int(state.step) == 4
  lines = [json.loads(l) for l in open(os.path.join(workdir,
                                                    'metrics.jsonl'))]
  assert all(np.isfinite(l['ebm_loss']) for l in lines if 'ebm_loss' in l)
  report = [l for l in lines if 'tv_samples' in l][-1]
  npz = np.load(os.path.join(workdir, 'samples', 'step_4.npz'))
  assert npz['x'].shape == npz['proposal'].shape == (64, 2)
  # the figures are those of the files written (revisions, proposals, the
  # flow's density), not just in [0, 1]
  from coopjax import data, metrics  # pylint: disable=g-import-not-at-top
  dataset = data.load(tiny_config().data, 0)
  np.testing.assert_allclose(report['tv_samples'],
                             metrics.sample_tv(npz['x'], dataset), rtol=1e-9)
  np.testing.assert_allclose(report['tv_samples_flow'],
                             metrics.sample_tv(npz['proposal'], dataset),
                             rtol=1e-9)
  np.testing.assert_allclose(
      report['tv_density_flow'],
      metrics.density_tv(np.log(npz['density_flow']), dataset), rtol=1e-5)
  assert np.max(np.abs(npz['x'] - npz['proposal'])) > 1e-4  # revised
  # CoopFlow(pre): the flow of a pretraining run, frozen for all 4 steps.
  # A half-written save beside its finished checkpoint is skipped, and left
  # where it is (flow_init is another run's workdir).
  partial = os.path.join(workdir, 'checkpoints',
                         '8.orbax-checkpoint-tmp-1234567890')
  os.makedirs(partial)
  pre = tiny_config('pre')
  pre.coopflow.flow_init = workdir
  pre.optim.flow.freeze_steps = 4
  pre_state = train.train_and_evaluate(pre, str(tmp_path / 'pre'))
  jax.tree_util.tree_map(np.testing.assert_array_equal,
                         jax.device_get(pre_state.params['flow']),
                         jax.device_get(state.params['flow']))
  assert os.path.isdir(partial)
  assert _differ(pre_state.params['ebm'], state.params['ebm'])  # its own EBM
  # CoopFlow(pre) in one run: the first 2 of 4 updates are the pretraining
  # run's exactly (EBM untouched, flow by maximum likelihood on the data);
  # the cooperative updates after them move the EBM.
  one_run = tiny_config()
  one_run.coopflow.pretrain_steps = 2
  one_run.train.update(steps=2, ckpt_every=2, sample_every=2)
  pretrain = tiny_config('pretrain')
  pretrain.train.update(steps=2, ckpt_every=2, sample_every=2)
  a = train.train_and_evaluate(one_run, str(tmp_path / 'one_run'))
  b = train.train_and_evaluate(pretrain, str(tmp_path / 'pretrain'))
  jax.tree_util.tree_map(
      lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6),
      jax.device_get(a.params), jax.device_get(b.params))
  one_run.train.update(steps=4, ckpt_every=4, sample_every=4)
  c = train.train_and_evaluate(one_run, str(tmp_path / 'one_run'),
                               allow_config_change=True)
  assert _differ(c.params['ebm'], b.params['ebm'])
  lines = [json.loads(l) for l in open(os.path.join(
      str(tmp_path / 'one_run'), 'metrics.jsonl'))]
  assert [l['pretraining'] for l in lines if 'pretraining' in l] == [1.0, 0.0]
  missing = tiny_config('pre')
  missing.coopflow.flow_init = str(tmp_path / 'nothing')
  with pytest.raises(FileNotFoundError, match='pretrain'):
    train.train_and_evaluate(missing, str(tmp_path / 'bad'))
