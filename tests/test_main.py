"""coopjax.main: the command line refuses unknown keys and wrong types."""

import os
import subprocess
import sys

import pytest

from helpers import REPO


def run_cli(*args):
  return subprocess.run(
      [sys.executable, '-m', 'coopjax.main', *args], cwd=REPO,
      capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_cli_refuses_unknown_key_and_wrong_type(tmp_path):
  base = ['--config=configs/checkerboard.py', f'--workdir={tmp_path}/run']
  out = run_cli(*base, '--config.train.stepz=3')
  assert out.returncode != 0 and 'stepz' in out.stderr
  out = run_cli(*base, '--config.train.steps=many')
  assert out.returncode != 0 and 'steps' in out.stderr
  assert not os.path.exists(f'{tmp_path}/run')
