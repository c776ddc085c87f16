"""Regenerates tests/golden/checkerboard_tiny.json (see tests/helpers/golden.py).

    PYTHONPATH=. python tools/make_golden.py

Trains the tiny checkerboard model of tests/helpers/trainer.py for 4 steps on
4 fake CPU devices (as the test session does) in a temporary directory and
writes its losses and parameter norms.
"""

import os
import sys
import tempfile

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=4')
os.environ['JAX_PLATFORMS'] = 'cpu'
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'tests'))

# pylint: disable=g-import-not-at-top,wrong-import-position
from coopjax.trainer import loop as train
from helpers import golden
from helpers.trainer import tiny_config


def main():
  with tempfile.TemporaryDirectory() as tmp:
    workdir = os.path.join(tmp, 'run')
    state = train.train_and_evaluate(tiny_config(), workdir)
    figures = golden.summary(workdir, state)
  golden.write(figures)
  print(f'Wrote {golden.PATH}: step {figures["step"]}, '
        f'{len(figures["param_norms"])} parameter arrays.')


if __name__ == '__main__':
  main()
