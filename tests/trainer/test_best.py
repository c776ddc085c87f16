"""Best-checkpoint tracking by a named metric (its wiring into the train loop
and --mode=eval: tests/trainer/test_loop.py)."""

import json
import math
import os

import jax.numpy as jnp
import numpy as np
import pytest

from coopjax.trainer import best as best_lib


def _state(v):
  return {'w': jnp.full((3,), v, jnp.float32)}


def test_keeps_the_better_checkpoint_and_resumes_from_its_record(tmp_path):
  workdir = str(tmp_path)
  best = best_lib.BestCheckpoint(workdir, 'fid', 'min')
  saved = [best.consider(step, {'fid': value, 'other': 0.0}, _state(step))
           for step, value in ((1, 3.0), (2, 5.0), (3, 2.0), (4, math.nan),
                               (5, 2.5))]
  saved.append(best.consider(6, {'other': 1.0}, _state(6)))  # no such figure
  best.close()
  assert saved == [True, False, True, False, False, False]
  assert os.listdir(os.path.join(workdir, 'checkpoints_best')) == ['3']
  record = json.load(open(os.path.join(workdir, 'best.json')))
  assert record == {'metric': 'fid', 'mode': 'min', 'value': 2.0, 'step': 3}
  np.testing.assert_array_equal(
      best_lib.restore(workdir, _state(0.0))['w'], [3.0, 3.0, 3.0])
  # A resumed run improves on the record, not on nothing.
  again = best_lib.BestCheckpoint(workdir, 'fid', 'min')
  assert not again.consider(7, {'fid': 2.1}, _state(7))
  assert again.consider(8, {'fid': 1.0}, _state(8))
  again.close()
  assert os.listdir(os.path.join(workdir, 'checkpoints_best')) == ['8']
  with pytest.raises(ValueError, match='best.json tracks'):
    best_lib.BestCheckpoint(workdir, 'inception_score', 'max')
  with pytest.raises(ValueError, match='best_mode'):
    best_lib.BestCheckpoint(str(tmp_path / 'other'), 'fid', 'lowest')


def test_max_mode():
  best = best_lib.BestCheckpoint.__new__(best_lib.BestCheckpoint)
  best.mode, best.value = 'max', 9.0
  assert best.better(9.5) and not best.better(8.0)
