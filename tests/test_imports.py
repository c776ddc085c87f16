"""Imports: no TensorFlow at import time (in subprocesses, with stub packages)."""

import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_importing_the_sampler_does_not_import_tensorflow(tmp_path):
  # Stub packages, so that an import of TensorFlow is seen even where it is
  # not installed (an import that succeeded lands in sys.modules).
  for name in ('tensorflow', 'tensorflow_datasets'):
    (tmp_path / name).mkdir()
    (tmp_path / name / '__init__.py').write_text('')
  code = ('import sys, coopjax.langevin, coopjax.cdrl, coopjax.trainer.loop; '
          'bad = [m for m in sys.modules if m.split(".")[0] in '
          '("tensorflow", "tensorflow_datasets")]; '
          'assert not bad, bad')
  env = {**os.environ, 'PYTHONPATH': str(tmp_path)}
  subprocess.run([sys.executable, '-c', code], check=True, timeout=120,
                 env=env)


@pytest.mark.slow
def test_importing_metrics_does_not_import_tensorflow(tmp_path):
  for name in ('tensorflow', 'tensorflow_datasets'):
    (tmp_path / name).mkdir()
    (tmp_path / name / '__init__.py').write_text('')
  code = ('import sys, coopjax.metrics, coopjax.trainer.reports; '
          'bad = [m for m in sys.modules if m.split(".")[0] in '
          '("tensorflow", "tensorflow_datasets")]; assert not bad, bad')
  subprocess.run([sys.executable, '-c', code], check=True, timeout=120,
                 env={**os.environ, 'PYTHONPATH': str(tmp_path)})
