"""The run directory: is it writable, and was it written by this config?

A workdir keeps the ``config.json`` of the run that made it. Continuing it with
a different config would silently mix two experiments, so
:func:`check_config` refuses unless the differences are in fields that are safe
to change mid-run (:data:`SAFE_TO_CHANGE`) or the user overrides with
``--allow_config_change``. :func:`check_writable` turns a read-only, missing or
full disk into one clear message before any work is done. This module imports
no JAX, so the command line can check a workdir before loading anything.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
from typing import Any, Dict, Iterator, List

CONFIG_FILE = 'config.json'
# Field names or prefixes (ending in '.') that may differ on resume.
SAFE_TO_CHANGE = ('train.steps', 'train.log_every', 'train.ckpt_every',
                  'train.sample_every', 'train.keep_checkpoints',
                  'train.on_nonfinite', 'train.metric_limits.',
                  'train.best_metric', 'train.best_mode',
                  'train.stop_check_every',
                  'sample.', 'eval.', 'task.')
MIN_FREE_BYTES = 64 * 2**20
_WRITE_ERRNOS = {errno.ENOSPC: 'the disk is full',
                 errno.EDQUOT: 'the disk quota is exceeded',
                 errno.EROFS: 'the file system is read-only',
                 errno.EACCES: 'permission denied',
                 errno.EPERM: 'permission denied',
                 errno.ENOTDIR: 'a parent of it is a file, not a directory',
                 errno.EEXIST: 'a file of that name is in the way'}


_DEFAULT_ADVICE = ('Free some space, fix the permissions, or pass another '
                   '--workdir.')
_ADVICE = {errno.ENOSPC: 'Free some space or pass another --workdir.',
           errno.EDQUOT: 'Free some space or pass another --workdir.',
           errno.EROFS: 'Pass a --workdir on a writable disk.',
           errno.EACCES: 'Fix the permissions or pass another --workdir.',
           errno.EPERM: 'Fix the permissions or pass another --workdir.',
           errno.ENOTDIR: 'Pass a --workdir whose parents are directories.',
           errno.EEXIST: 'Remove that file or pass another --workdir.'}


class WorkdirError(OSError):
  """The workdir cannot be written (or is full)."""


class ConfigChangedError(ValueError):
  """The workdir was written by a different config."""


def _describe(e: OSError) -> str:
  return _WRITE_ERRNOS.get(e.errno, e.strerror or str(e))


@contextlib.contextmanager
def explain_write_errors(path: str, what: str) -> Iterator[None]:
  """Re-raises an OSError from writing ``what`` under ``path`` as a
  :class:`WorkdirError` that says why and what to do."""
  try:
    yield
  except WorkdirError:
    raise
  except OSError as e:
    raise WorkdirError(
        e.errno, f'Cannot write {what} in {path}: {_describe(e)} ({e}). '
        f'{_ADVICE.get(e.errno, _DEFAULT_ADVICE)}') from e


def check_writable(workdir: str, min_free_bytes: int = MIN_FREE_BYTES) -> None:
  """Creates ``workdir`` if needed and checks a file can be written there.

  Args:
    workdir: the run directory (a local path).
    min_free_bytes: refuse to start with less free space than this.

  Raises:
    WorkdirError: the directory cannot be created or written, the disk has
      less than ``min_free_bytes`` free, or ``workdir`` is a URL.
  """
  check_local(workdir)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise WorkdirError(
        errno.EEXIST, f'--workdir={workdir} is an existing file, not a '
        f'directory; pass the path of a directory (it is created if missing).')
  with explain_write_errors(workdir, 'the run directory'):
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(
        workdir, f'.write_test_{socket.gethostname()}_{os.getpid()}')
    with open(probe, 'w', encoding='utf-8') as f:
      f.write('ok')
    os.remove(probe)
  free = shutil.disk_usage(workdir).free
  if free < min_free_bytes:
    raise WorkdirError(
        errno.ENOSPC, f'Only {free / 2**20:.1f} MiB free on the disk of '
        f'{workdir}; at least {min_free_bytes / 2**20:.0f} MiB are needed for '
        f'checkpoints and samples. Free some space or pass another --workdir.')


def check_local(workdir: str) -> None:
  """Refuses a URL: the workdir is written with local file I/O.

  Raises:
    WorkdirError: ``workdir`` is a URL (``gs://...``).
  """
  if '://' in workdir:
    raise WorkdirError(
        errno.EINVAL, f'--workdir={workdir} is a URL; coopjax writes its '
        f'config, metrics and samples with local file I/O. Mount the bucket '
        f'(e.g. gcsfuse) at the same path on every host and pass that path.')


def flatten(tree: Any, prefix: str = '') -> Dict[str, Any]:
  """``{'a': {'b': 1}} -> {'a.b': 1}`` (lists are leaves)."""
  if not isinstance(tree, dict):
    return {prefix[:-1]: tree}
  out = {}
  for k, v in tree.items():
    out.update(flatten(v, f'{prefix}{k}.'))
  return out


def _is_safe(key: str) -> bool:
  return any(key == s or (s.endswith('.') and key.startswith(s))
             for s in SAFE_TO_CHANGE)


def config_changes(old: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
  """Dotted names whose values differ between two JSON configs, ignoring
  :data:`SAFE_TO_CHANGE` and fields absent from ``old``: a workdir written
  before :mod:`coopjax.config` declared a field ran with the library default
  that the schema now declares for it."""
  a, b = flatten(old), flatten(new)
  return [k for k in sorted(set(a) | set(b))
          if not _is_safe(k) and k in a and a[k] != b.get(k, '<absent>')]


def _as_json(config) -> Dict[str, Any]:
  return json.loads(config.to_json_best_effort())


def check_config(config, workdir: str, allow_change: bool = False) -> List[str]:
  """Refuses a workdir whose ``config.json`` differs from ``config``.

  Args:
    config: the run's ConfigDict.
    workdir: the run directory.
    allow_change: accept differences (they are returned, to be logged).

  Returns:
    The differing fields (empty for a new workdir or an equal config).

  Raises:
    ConfigChangedError: fields other than :data:`SAFE_TO_CHANGE` differ and
      ``allow_change`` is False.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    return []
  with open(path, encoding='utf-8') as f:
    old = json.load(f)
  new = _as_json(config)
  changes = config_changes(old, new)
  if changes and not allow_change:
    a, b = flatten(old), flatten(new)
    shown = '; '.join(f'{k}: {a.get(k, "<absent>")!r} in the workdir, '
                      f'{b.get(k, "<absent>")!r} now' for k in changes[:5])
    more = f' (and {len(changes) - 5} more)' if len(changes) > 5 else ''
    raise ConfigChangedError(
        f'{workdir} was written by a different config ({path}): {shown}{more}. '
        f'Use a fresh --workdir, the config that wrote it, or pass '
        f'--allow_config_change to continue anyway.')
  return changes


def save_config(config, workdir: str) -> None:
  """Writes ``config.json`` atomically (process 0 only)."""
  from coopjax.trainer import distributed  # pylint: disable=g-import-not-at-top
  if not distributed.is_main():
    return
  path = os.path.join(workdir, CONFIG_FILE)
  with explain_write_errors(workdir, CONFIG_FILE):
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
      f.write(config.to_json_best_effort(indent=2))
    os.replace(path + '.tmp', path)
