"""coopjax.trainer.workdir: the config guard, unwritable or full workdirs."""

import errno
import json

import pytest

from coopjax.trainer import loop as train
from coopjax.trainer import workdir as wd

from helpers.trainer import tiny_config


def test_config_guard_ignores_safe_fields():
  old = json.loads(tiny_config().to_json_best_effort())
  new = tiny_config(steps=99, log_every=7, on_nonfinite='skip')
  new.train.metric_limits.energy_gap = 1e5
  new.sample.num = 5
  assert wd.config_changes(old, json.loads(new.to_json_best_effort())) == []
  new.optim.ebm.lr = 0.5
  new.data.name = '8gaussians'
  assert wd.config_changes(old, json.loads(new.to_json_best_effort())) == [
      'data.name', 'optim.ebm.lr']


@pytest.mark.slow
def test_unwritable_or_full_workdir_is_a_clear_error(tmp_path, monkeypatch):
  blocker = tmp_path / 'file'
  blocker.write_text('x')
  with pytest.raises(wd.WorkdirError, match='not a directory.*--workdir'):
    train.train_and_evaluate(tiny_config(), str(blocker / 'run'))
  with pytest.raises(wd.WorkdirError, match='disk is full'):
    with wd.explain_write_errors(str(tmp_path), 'checkpoint 2'):
      raise OSError(errno.ENOSPC, 'No space left on device')

  class Usage:
    free = 2**20
  monkeypatch.setattr(wd.shutil, 'disk_usage', lambda _: Usage)
  with pytest.raises(wd.WorkdirError, match='Only 1.0 MiB free'):
    train.train_and_evaluate(tiny_config(), str(tmp_path / 'run'))
