"""Command line: ``python -m coopjax.main --config=configs/checkerboard.py --workdir=DIR``.

Modes: ``train`` (default; resumes from DIR), ``sample`` (draws
``config.sample.num`` samples from the latest checkpoint), ``eval`` (prints
the quality metrics), and the algorithm's own tasks on the latest checkpoint
(CDRL: ``guided``, ``compose``, ``inpaint``, ``ood``, ``fewer_steps``; see
``coopjax.algorithms``). Any config field can be overridden, e.g.
``--config.train.steps=100``; an unknown field or a value of the wrong type is
refused with its name.
"""

import sys

from absl import app
from absl import logging
from absl import flags
from ml_collections import config_flags

MODES = ('train', 'sample', 'eval')

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Path to a config file, optionally with :variant.',
    lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory of the run.')
_MODE = flags.DEFINE_string(
    'mode', 'train', 'train, sample, eval, or a task of the algorithm.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  from coopjax import train  # pylint: disable=g-import-not-at-top
  config, workdir = _CONFIG.value, _WORKDIR.value
  if _MODE.value == 'train':
    train.train_and_evaluate(config, workdir)
  elif _MODE.value == 'sample':
    train.sample(config, workdir)
  elif _MODE.value == 'eval':
    train.evaluate(config, workdir)
  else:
    train.run_task(config, workdir, _MODE.value)


def run():
  """Entry point of the ``coopjax`` console script."""
  app.run(main)


if __name__ == '__main__':
  sys.exit(run())
