"""Checks of a command line before anything heavy is imported or written.

``python -m coopjax.main`` calls :func:`check` once the flags are parsed and
before JAX, the dataset or the model are loaded: a wrong mode, an unknown
dataset, a missing or malformed data file, missing tfds data or FID weights,
a workdir that is a file, holds another config, or has no checkpoint for an
inference mode are refused here, in one or two lines, and nothing is
created. This module imports only numpy, ml_collections and the parts of
coopjax that import nothing heavier (``coopjax.config``, ``coopjax.data``,
``coopjax.trainer.workdir``).

Errors: :class:`UsageError` (the command asks for something that does not
exist: exit code 2) and :class:`RunError` (the files or machine are not
ready for it: exit code 1).
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from typing import Iterable, Optional, Sequence

from coopjax import config as config_lib

MODES = ('train', 'sample', 'eval')
INFERENCE_MODES = ('sample', 'eval')
CONFIGS_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'configs')


class UsageError(Exception):
  """The command names something that does not exist (exit code 2)."""
  exit_code = 2


class RunError(Exception):
  """The command is well formed but its files are not ready (exit code 1)."""
  exit_code = 1


def did_you_mean(word: str, known: Iterable[str], prefix: str = '') -> str:
  """``"; did you mean 'steps'?"`` for the closest of ``known`` (shown after
  ``prefix``), else ``'.'``; a sentence may follow either."""
  close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
  return f"; did you mean {prefix + close[0]!r}?" if close else '.'


def modes_of(config) -> tuple:
  """``train``, ``sample``, ``eval`` and the tasks of the config's algorithm
  on its kind of data."""
  from coopjax import data  # pylint: disable=g-import-not-at-top
  kind = data.kind_of(config.data.name, config.data.kind)
  return MODES + config_lib.tasks(config.algorithm, kind)


def check_algorithm(config) -> None:
  known = tuple(config_lib.BASES)
  if config.algorithm not in known:
    raise UsageError(
        f'Unknown config.algorithm={config.algorithm!r}'
        f'{did_you_mean(config.algorithm, known)} Known: {", ".join(known)}.')


def check_dataset(config) -> str:
  """The data's kind ('images' or 'points'); refuses an unknown name."""
  from coopjax import data  # pylint: disable=g-import-not-at-top
  if config.data.kind not in data.KINDS:
    raise UsageError(
        f'Unknown --config.data.kind={config.data.kind!r}'
        f'{did_you_mean(config.data.kind, data.KINDS)} Known: '
        f'{", ".join(data.KINDS)}.')
  try:
    return data.kind_of(config.data.name, config.data.kind)
  except ValueError:
    known = [n for names in data.KINDS.values() for n in names
             if n != 'array'] + ['array']
    raise UsageError(
        f'Unknown dataset --config.data.name={config.data.name!r}'
        f'{did_you_mean(config.data.name, known)} Known: '
        f'{", ".join(known)} (array: your own .npy/.npz in data.path).'
    ) from None


def check_mode(config, mode: str) -> None:
  """Refuses a ``--mode`` that is neither train/sample/eval nor a task."""
  modes = modes_of(config)
  if mode not in modes:
    none = (' (its tasks need image data)' if modes == MODES
            and config_lib.tasks(config.algorithm, 'images') else '')
    raise UsageError(
        f'Unknown --mode={mode!r}{did_you_mean(mode, modes)} Modes of '
        f'{config.algorithm} on {config.data.name}: {", ".join(modes)}{none}.')


def _tfds_dir(cfg) -> str:
  return (cfg.tfds_dir or os.environ.get('TFDS_DATA_DIR')
          or os.path.join(os.path.expanduser('~'), 'tensorflow_datasets'))


def check_data(config, kind: str) -> None:
  """Reads and validates a user data file; checks tfds data is prepared and
  the packages a dataset needs are installed."""
  from coopjax.data import arrays, images  # pylint: disable=g-import-not-at-top
  cfg = config.data
  try:
    if cfg.name == 'array':
      if kind == 'points':
        arrays.load_point_array(cfg.path)
      else:
        images.read_user_images(cfg.path)
    elif cfg.name == 'mnist5k':
      images.mnist5k_path()
  except (ValueError, OSError) as e:
    raise RunError(str(e)) from e
  if cfg.name in images.TFDS:
    if importlib.util.find_spec('tensorflow_datasets') is None:
      raise RunError(
          f'data.name={cfg.name!r} is read with tensorflow-datasets, which is '
          f'not installed; run: pip install -e ".[data]".')
    root = _tfds_dir(cfg)
    if '://' not in root and not os.path.isdir(os.path.join(root, cfg.name)):
      from coopjax.data import tfds_source  # pylint: disable=g-import-not-at-top
      raise RunError(tfds_source.missing_data_message(cfg.name,
                                                      cfg.tfds_dir))


def check_eval_files(config) -> None:
  """FID weights named by ``eval.inception_path`` exist."""
  path = config.eval.inception_path
  if path and '://' not in path and not os.path.isfile(path):
    raise RunError(
        f'FID weights --config.eval.inception_path={path!r} do not exist; '
        f'convert them once as docs/fid.md says, or pass '
        f"--config.eval.inception_path='' to skip FID.")


BEST_SUBDIR = 'checkpoints_best'  # coopjax.trainer.best.SUBDIR (no JAX here)


def checkpoint_steps(workdir: str, subdir: str = 'checkpoints') -> list:
  """Steps of the finished checkpoints in ``workdir/<subdir>``."""
  path = os.path.join(workdir, subdir)
  if not os.path.isdir(path):
    return []
  return sorted(int(n) for n in os.listdir(path) if n.isdigit())


def check_workdir(config, workdir: str, mode: str, allow_change: bool,
                  command: Optional[Sequence[str]] = None) -> None:
  """Refuses a workdir that is a file, a URL, was written by another config,
  or (inference modes and tasks) holds no checkpoint. Creates nothing."""
  from coopjax.trainer import workdir as wd  # pylint: disable=g-import-not-at-top
  try:
    wd.check_local(workdir)
  except wd.WorkdirError as e:
    raise RunError(e.strerror) from None
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise RunError(
        f'--workdir={workdir} is an existing file, not a directory; pass '
        f'the path of a directory (it is created if missing).')
  if mode == 'train':  # inference modes accept changed sampling fields
    try:
      wd.check_config(config, workdir, allow_change)
    except wd.ConfigChangedError as e:
      raise RunError(str(e)) from None
  if mode != 'train' and not checkpoint_steps(workdir):
    train = ' '.join(a for a in (command or ()) if not a.startswith('--mode'))
    where = (f'{workdir} does not exist' if not os.path.exists(workdir)
             else f'{os.path.join(workdir, "checkpoints")} holds no checkpoint')
    raise RunError(
        f'--mode={mode} needs a trained checkpoint, but {where}; train first'
        + (f': {train}' if train else ' with --mode=train') + '.')
  if (mode != 'train' and config.eval.get('checkpoint', '') == 'best'
      and not checkpoint_steps(workdir, BEST_SUBDIR)):
    raise RunError(
        f'--config.eval.checkpoint=best, but {workdir} kept no best '
        f'checkpoint: train with --config.train.best_metric=<a logged '
        f'figure, e.g. fid> first, or use --config.eval.checkpoint=latest.')


def check_flow_init(config) -> None:
  """CoopFlow's ``coopflow.flow_init`` names a workdir with a checkpoint."""
  init = config.get('coopflow', {}).get('flow_init', '')
  if init and not checkpoint_steps(init):
    raise RunError(
        f'--config.coopflow.flow_init={init!r} holds no checkpoint; pass the '
        f'workdir of a finished :pretrain run.')


# Intervals of what the trainer writes; one past train.steps: only at the end.
INTERVALS = {'log_every': 'metric lines', 'ckpt_every': 'checkpoints',
             'sample_every': 'sample reports'}
# Intervals of the processes' agreement on a stop signal (no 'at the end').
AGREEMENT_INTERVALS = {
    'stop_check_every': "the processes' agreements on a stop signal"}


def check_train_intervals(config) -> None:
  """``train.steps`` >= 0 and the logging, checkpoint, sample and stop-check
  intervals >= 1 (a reporting interval past ``train.steps`` means: only at
  the end)."""
  train = config.train
  if train.steps < 0:
    raise UsageError(f'config.train.steps must be >= 0, got {train.steps}.')
  for name, what in {**INTERVALS, **AGREEMENT_INTERVALS}.items():
    every = train.get(name, 1)
    if every < 1:
      hint = (f'; for {what} only at the end pass '
              f'--config.train.{name}={max(train.steps, 1)}'
              if name in INTERVALS else '')
      raise UsageError(
          f'config.train.{name} must be >= 1 (updates between {what}), got '
          f'{every}{hint}.')


def check(config, workdir: str, mode: str, allow_change: bool = False,
          command: Optional[Sequence[str]] = None) -> None:
  """Every check of this module, cheapest first (see the module docstring).

  Raises:
    UsageError: an unknown algorithm, dataset or mode.
    RunError: a data file, tfds data, FID weights, the workdir or its
      checkpoint is not as the command needs.
  """
  check_algorithm(config)
  kind = check_dataset(config)
  check_mode(config, mode)
  check_train_intervals(config)
  check_workdir(config, workdir, mode, allow_change, command)
  check_eval_files(config)
  check_flow_init(config)
  check_data(config, kind)
