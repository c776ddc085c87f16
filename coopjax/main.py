"""Command line: ``python -m coopjax.main --config=configs/checkerboard.py --workdir=DIR``.

Modes: ``train`` (default; resumes from DIR), ``sample`` (draws
``config.sample.num`` samples from the latest checkpoint), ``eval`` (prints
the quality metrics), and the algorithm's own tasks on the latest checkpoint
(CDRL: ``guided``, ``compose``, ``inpaint``, ``ood``, ``fewer_steps``;
CoopFlow: ``reconstruct``, ``interpolate``, ``inpaint``; latent flow prior:
``generate``, ``reconstruct``, ``anomaly``, ``inpaint``, ``recover``; see
``coopjax.registry``). Any config field can be overridden, e.g.
``--config.train.steps=100``; an unknown field or a value of the wrong type is
refused with its name.

Multi-host (every host runs the same command; see ``launch/README.md``):
``--distributed`` with ``--coordinator_address=HOST:PORT --num_processes=N
--process_id=I`` (or the ``COOPJAX_*`` environment variables); inside SLURM
or on a Cloud TPU slice the three values are detected. Training stopped by
SIGTERM/SIGINT saves a checkpoint and exits with code 75 (resumable).
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
_DISTRIBUTED = flags.DEFINE_bool(
    'distributed', None, 'Call jax.distributed.initialize (default: when the '
    'flags below, COOPJAX_* variables, SLURM or a TPU slice ask for it).')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', '', 'host:port of process 0 (multi-host).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None,
                                      'Number of processes (multi-host).')
_PROCESS_ID = flags.DEFINE_integer('process_id', None,
                                   'Index of this process (multi-host).')
_ALLOW_CHANGE = flags.DEFINE_bool(
    'allow_config_change', False, 'Continue a workdir written by a different '
    'config (by default refused, except for train.steps, logging and '
    'sampling fields).')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  from coopjax.trainer import distributed  # pylint: disable=g-import-not-at-top
  distributed.initialize(_DISTRIBUTED.value, _COORDINATOR.value,
                         _NUM_PROCESSES.value, _PROCESS_ID.value)
  from coopjax.trainer import loop as train, preemption  # pylint: disable=g-import-not-at-top
  config, workdir = _CONFIG.value, _WORKDIR.value
  if _MODE.value == 'train':
    state = train.train_and_evaluate(config, workdir, _ALLOW_CHANGE.value)
    if int(state.step) < config.train.steps:
      sys.exit(preemption.EXIT_PREEMPTED)
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
