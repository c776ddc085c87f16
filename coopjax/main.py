"""Command line: ``coopjax --config=configs/checkerboard.py --workdir=DIR``
(or ``python -m coopjax.main ...``).

Modes: ``train`` (default; resumes from DIR), ``sample`` (draws
``config.sample.num`` samples from the latest checkpoint), ``eval`` (prints
the quality metrics), and the algorithm's own tasks on the latest checkpoint
(CDRL: ``guided``, ``compose``, ``inpaint``, ``ood``, ``fewer_steps``;
CoopFlow: ``reconstruct``, ``interpolate``, ``inpaint``; latent flow prior:
``generate``, ``reconstruct``, ``anomaly``, ``inpaint``, ``recover``; the
names are in ``coopjax.config``). Any config field can be overridden, e.g.
``--config.train.steps=100``. ``--help`` lists the modes of the config given.

A bad command (an unknown field, variant, dataset or mode, a missing or
malformed data file, a workdir that cannot be used, a mode that needs a
checkpoint in a workdir without one, ...) is refused in one or two lines on
stderr, before JAX is imported where possible (:mod:`coopjax.preflight`),
with exit code 2 for a usage error and 1 otherwise, and leaves nothing
behind in the workdir. ``--debug`` (or ``COOPJAX_DEBUG=1``) shows the Python
traceback instead.

Multi-host (every host runs the same command; see ``launch/README.md``):
``--distributed`` with ``--coordinator_address=HOST:PORT --num_processes=N
--process_id=I`` (or the ``COOPJAX_*`` environment variables); inside SLURM
or on a Cloud TPU slice the three values are detected. Training stopped by
SIGTERM/SIGINT saves a checkpoint and exits with code 75 (resumable).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from typing import Iterator, List, Optional

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from coopjax import preflight

MODES = preflight.MODES
DEBUG_ENV = 'COOPJAX_DEBUG'
PROG = 'coopjax'
HELP_FLAGS = ('-h', '--help', '-?', '--helpshort', '--helpfull')

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Path to a config file, optionally with :variant '
    '(required).', lock_config=True)
flags.FLAGS['config'].default_as_str = None  # not "(default: 'None')"
_WORKDIR = flags.DEFINE_string('workdir', None,
                               'Directory of the run (required).')
_MODE = flags.DEFINE_string(
    'mode', 'train', 'train, sample, eval, or a task of the algorithm.')
_DEBUG = flags.DEFINE_bool(
    'debug', False, f'Show the Python traceback of an error (also '
    f'{DEBUG_ENV}=1).')
_DISTRIBUTED = flags.DEFINE_bool(
    'distributed', None, 'Call jax.distributed.initialize (default: when the '
    'flags below, COOPJAX_* variables, SLURM or a TPU slice ask for it).')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', '', 'host:port of process 0 (multi-host).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None,
                                      'Number of processes (multi-host).')
_PROCESS_ID = flags.DEFINE_integer('process_id', None,
                                   'Index of this process (multi-host).')
_COMPILE_CACHE = flags.DEFINE_string(
    'compile_cache', None, "Directory of JAX's persistent compilation cache: "
    'a later run of the same programs loads them instead of compiling '
    '(default: JAX_COMPILATION_CACHE_DIR if set, else $COOPJAX_COMPILE_CACHE '
    'or ~/.cache/coopjax/jax; off for multi-process CPU runs); '
    '--compile_cache= turns it off.')
_CPU_DEVICES = flags.DEFINE_integer(
    'cpu_devices', 0, 'Split the CPU into N devices for N-way data '
    'parallelism (XLA_FLAGS=--xla_force_host_platform_device_count=N, set '
    'before JAX starts): on a CPU-only machine, N = the cores. 2 devices on '
    '2 cores: the 2-D train step 46 rather than 57 ms; 0: JAX default (one '
    'CPU device). Accelerators are not affected.')
_ALLOW_CHANGE = flags.DEFINE_bool(
    'allow_config_change', False, 'Continue a workdir written by a different '
    'config (by default refused, except for train.steps, logging, the '
    'bad-step policy and sampling fields).')


# --- the environment JAX starts in ------------------------------------------

CPU_COUNT_FLAG = '--xla_force_host_platform_device_count'


def with_cpu_devices(xla_flags: str, n: int) -> str:
  """``XLA_FLAGS`` with ``n`` CPU devices (``n <= 0``: unchanged).

  Raises:
    preflight.UsageError: ``xla_flags`` already sets another count.
  """
  if n <= 0:
    return xla_flags
  given = [f.split('=', 1)[1] for f in xla_flags.split()
           if f.startswith(CPU_COUNT_FLAG + '=')]
  if given:
    if given[-1] != str(n):
      raise preflight.UsageError(
          f'--cpu_devices={n} but XLA_FLAGS sets {CPU_COUNT_FLAG}='
          f'{given[-1]}; drop one of the two.')
    return xla_flags
  return f'{xla_flags} {CPU_COUNT_FLAG}={n}'.strip()


def _check_cpu_devices(n: int) -> None:
  """Raises RunError if ``--cpu_devices=n`` did not take effect (JAX's CPU
  backend had already started, e.g. when ``run`` is called in-process)."""
  if n <= 0:
    return
  import jax  # pylint: disable=g-import-not-at-top
  got = len(jax.local_devices(backend='cpu'))
  if got != n:
    raise preflight.RunError(
        f'--cpu_devices={n} did not take effect: JAX had already started '
        f'with {got} CPU device(s). Pass it on the command line of a new '
        f'process (or set XLA_FLAGS={CPU_COUNT_FLAG}={n} before JAX starts).')


# --- reading the command line before absl does ------------------------------

def _flag_value(argv: List[str], name: str) -> Optional[str]:
  """The last value of ``--name=V`` or ``--name V`` in ``argv``, or None."""
  value = None
  for i, arg in enumerate(argv):
    if arg.startswith(f'--{name}='):
      value = arg.split('=', 1)[1]
    elif arg == f'--{name}' and i + 1 < len(argv):
      value = argv[i + 1]
  return value


def _debug_requested(argv: List[str]) -> bool:
  env = os.environ.get(DEBUG_ENV, '').lower()
  if env not in ('', '0', 'false', 'no'):
    return True
  return any(a == '--debug' or (a.startswith('--debug=') and a.split(
      '=', 1)[1].lower() in ('1', 'true', 'yes')) for a in argv[1:])


def config_files() -> List[str]:
  """The config files shipped in ``configs/`` (empty if not installed)."""
  if not os.path.isdir(preflight.CONFIGS_DIR):
    return []
  return sorted(f for f in os.listdir(preflight.CONFIGS_DIR)
                if f.endswith('.py') and not f.startswith('_'))


def _check_config_file(spec: str) -> None:
  path = spec.split(':', 1)[0]
  if os.path.isfile(path):
    return
  names = config_files()
  shown = os.path.relpath(preflight.CONFIGS_DIR)
  hint = preflight.did_you_mean(os.path.basename(path), names)
  raise preflight.UsageError(
      f'Config file {path!r} does not exist{hint} The configs are in '
      f'{shown}/: {", ".join(names) or "(none found)"}; pass e.g. '
      f'--config={shown}/checkerboard.py.')


def load_config(spec: str):
  """The ConfigDict of ``path[:variant]``, as ``--config`` loads it."""
  _check_config_file(spec)
  path, _, variant = spec.partition(':')
  module_spec = importlib.util.spec_from_file_location('coopjax_cli_config',
                                                       path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(variant) if variant else module.get_config()


def _field_problem(config, dotted: str) -> Optional[str]:
  """Why ``config.<dotted>`` is not a field, or None if it is."""
  node, done = config, []
  for part in dotted.split('.'):
    keys = list(node.keys()) if hasattr(node, 'keys') else []
    if part not in keys:
      where = 'config' + ''.join(f'.{d}' for d in done)
      if not keys:
        return (f'config.{".".join(done)} is a value, not a section; '
                f'override it as --config.{".".join(done)}=VALUE.')
      hint = preflight.did_you_mean(part, keys, prefix='.'.join(done + ['']))
      return (f'Unknown config field {dotted!r}{hint} Fields of {where}: '
              f'{", ".join(sorted(keys))} (declared in coopjax/config/).')
    node, done = node[part], done + [part]
  return None


def _last_line(text: str) -> str:
  lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
  last = lines[-1] if lines else text
  for prefix in ('ValueError: ', 'TypeError: ', 'KeyError: ',
                 'AttributeError: '):
    if last.startswith(prefix):
      return last[len(prefix):]
  return last


def _flag_error(error: Exception, argv: List[str]) -> str:
  """One line for an error of absl / ml_collections flag parsing."""
  text = str(error)
  if 'Error whilst parsing config file' in text or 'Traceback' in text:
    return f'--config={_flag_value(argv, "config")}: {_last_line(text)}'
  spec = _flag_value(argv, 'config')
  overrides = [a[2:].split('=', 1) for a in argv[1:]
               if a.startswith('--config.')]
  if spec and overrides:
    try:
      config = load_config(spec)
    except Exception:  # pylint: disable=broad-except
      config = None
    if config is not None:
      for name_value in overrides:
        problem = _field_problem(config, name_value[0][len('config.'):])
        if problem:
          return problem
      prefix = 'flag --config.'
      if text.startswith(prefix):
        name = text[len('flag --'):].split('=', 1)[0]
        field = name[len('config.'):]
        node = config
        for part in field.split('.'):
          node = node[part]
        reason = text.split(': ', 1)[1] if ': ' in text else text
        return (f'--{name}: {reason}. config.{field} is '
                f'{type(node).__name__} (now {node!r}).')
  return text.replace('\\n', ' ')


def _parse_flags(argv: List[str]) -> List[str]:
  """absl's flag parsing with every error turned into a UsageError."""
  spec = _flag_value(argv, 'config')
  if spec:
    _check_config_file(spec)
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # pylint: disable=broad-except
    raise preflight.UsageError(_flag_error(e, argv)) from e


# --- help --------------------------------------------------------------------

_BASIC_MODES = ('train (default; resumes from DIR), sample (samples of the '
                'latest checkpoint), eval (its quality figures)')
_GENERIC_MODES = (
    f'{_BASIC_MODES}; tasks on a trained run: '
    'CDRL images: guided, compose, inpaint, ood, fewer_steps; CoopFlow '
    'images: reconstruct, interpolate, inpaint; latent_flow: generate, '
    'reconstruct, anomaly, inpaint, recover')


def help_text(argv: List[str]) -> str:
  """The few lines ``--help`` prints (modes of ``--config`` if given)."""
  spec = _flag_value(argv, 'config')
  modes, problem = _GENERIC_MODES, ''
  if spec:
    try:
      config = load_config(spec)
      tasks = preflight.modes_of(config)[len(MODES):]
      modes = (f'modes of {config.algorithm} on {config.data.name} ({spec}): '
               f'{_BASIC_MODES}'
               + (f'; tasks: {", ".join(tasks)}' if tasks else ''))
    except Exception as e:  # pylint: disable=broad-except
      problem = f'\n(--config={spec} could not be read: {_last_line(str(e))})'
  configs = os.path.relpath(preflight.CONFIGS_DIR)
  return f"""usage: {PROG} --config=FILE.py[:VARIANT] --workdir=DIR [--mode=MODE] [--config.FIELD=VALUE ...]
  (or: python -m coopjax.main ...)

--mode: {modes}.{problem}
--config: a file of {configs}/ ({", ".join(config_files()) or "not installed"}); a variant after a colon, e.g. {configs}/checkerboard.py:drl.
--config.FIELD=VALUE overrides any field, e.g. --config.train.steps=100 --config.data.name=8gaussians; every field and its default: coopjax/config/.
--workdir: the run directory (checkpoints, metrics.jsonl, tensorboard/, samples/); training resumes from it.
Other flags: --cpu_devices=N (N-way data parallelism on a CPU: N = the cores), --allow_config_change, --compile_cache=DIR (JAX's persistent compilation cache; default ~/.cache/coopjax/jax, --compile_cache= for none), --debug (or {DEBUG_ENV}=1: tracebacks), --distributed (multi-host); --helpfull lists every flag.
"""


# --- running ---------------------------------------------------------------

def _directories(root: str) -> set:
  if not os.path.isdir(root):
    return set()
  return {os.path.abspath(d) for d, _, _ in os.walk(root)}


@contextlib.contextmanager
def leave_nothing_new_and_empty(workdir: str) -> Iterator[None]:
  """On an error, removes the empty directories the command created under
  (and including) ``workdir``; files are never removed."""
  before = _directories(workdir)
  try:
    yield
  except Exception:
    for d in sorted(_directories(workdir) - before, key=len, reverse=True):
      with contextlib.suppress(OSError):
        os.rmdir(d)  # only succeeds if empty
    raise


_ARGV: List[str] = []  # the command line run() was given


def _train_command(argv: List[str]) -> List[str]:
  return [PROG] + [a for a in argv[1:] if not a.startswith('--mode')]


def main(argv):
  if len(argv) > 1:
    raise preflight.UsageError(
        f'Unexpected arguments: {" ".join(argv[1:])} (flags are written '
        f'--name=value; --help lists them).')
  config, workdir, mode = _CONFIG.value, _WORKDIR.value, _MODE.value
  for name, value in (('config', config), ('workdir', workdir)):
    if not value:
      raise preflight.UsageError(
          f'--{name} is required, e.g. {PROG} --config=configs/checkerboard.py '
          f'--workdir=runs/checkerboard (--help for more).')
  if _CPU_DEVICES.value:
    os.environ['XLA_FLAGS'] = with_cpu_devices(
        os.environ.get('XLA_FLAGS', ''), _CPU_DEVICES.value)
  with leave_nothing_new_and_empty(workdir):
    preflight.check(config, workdir, mode, _ALLOW_CHANGE.value,
                    command=_train_command(_ARGV or sys.argv))
    if mode == 'train':
      from coopjax.trainer import workdir as wd  # pylint: disable=g-import-not-at-top
      wd.check_writable(workdir)
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    from coopjax.trainer import distributed  # pylint: disable=g-import-not-at-top
    distributed.initialize(_DISTRIBUTED.value, _COORDINATOR.value,
                           _NUM_PROCESSES.value, _PROCESS_ID.value)
    _check_cpu_devices(_CPU_DEVICES.value)
    from coopjax.trainer import compile_cache  # pylint: disable=g-import-not-at-top
    compile_cache.configure(_COMPILE_CACHE.value)
    from coopjax.trainer import loop as train, preemption  # pylint: disable=g-import-not-at-top
    if mode == 'train':
      state = train.train_and_evaluate(config, workdir, _ALLOW_CHANGE.value)
      if int(state.step) < config.train.steps:
        sys.exit(preemption.EXIT_PREEMPTED)
    elif mode == 'sample':
      train.sample(config, workdir)
    elif mode == 'eval':
      train.evaluate(config, workdir)
    else:
      train.run_task(config, workdir, mode)


def error_message(error: BaseException) -> str:
  """The line printed for ``error``: its message, with the type for errors
  that are not one of coopjax's own explanations."""
  if isinstance(error, OSError) and error.strerror and not error.filename:
    text = error.strerror
  else:
    text = str(error)
  if isinstance(error, KeyError) and len(error.args) == 1:
    text = str(error.args[0])
  if not isinstance(error, (preflight.UsageError, preflight.RunError,
                            ValueError, OSError)):
    text = f'{type(error).__name__}: {text}'
  return text


def run(argv: Optional[List[str]] = None) -> int:
  """Entry point of the ``coopjax`` console script and ``python -m
  coopjax.main``; returns (or exits with) the exit code."""
  argv = list(sys.argv if argv is None else argv)
  argv[0] = PROG if argv[0].endswith(('main.py', PROG)) else argv[0]
  if any(a in HELP_FLAGS for a in argv[1:]):
    sys.stdout.write(help_text(argv))
    if '--helpfull' in argv:
      sys.stdout.write('\n' + flags.FLAGS.get_help() + '\n')
    return 0
  debug = _debug_requested(argv)
  _ARGV[:] = argv
  try:
    app.run(main, argv=argv, flags_parser=_parse_flags)
  except SystemExit:
    raise
  except Exception as e:  # pylint: disable=broad-except
    if debug:
      raise
    known = isinstance(e, (preflight.UsageError, preflight.RunError,
                           ValueError, OSError))
    sys.stderr.write(f'{PROG}: error: {error_message(e)}\n')
    if not known:
      sys.stderr.write(f'({DEBUG_ENV}=1 or --debug shows the traceback)\n')
    sys.stderr.flush()
    return getattr(e, 'exit_code', 1)
  return 0


if __name__ == '__main__':
  sys.exit(run())
