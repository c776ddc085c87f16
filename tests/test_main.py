"""The command line: every bad input is refused in one or two lines naming the
culprit, with exit code 2 (usage) or 1, no traceback, and nothing created or
changed in the workdir; ``--help`` exits 0 and lists the config's modes.

Each case runs the installed ``coopjax`` console script (``python -m
coopjax.main`` where it is not installed) in a subprocess. The refusals
happen before JAX is imported (coopjax.preflight), so every process takes
well under a second; they run side by side.
"""

import json
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

from helpers import REPO, config_module

CB = '--config=configs/checkerboard.py'
DIGITS = '--config=configs/digits.py'


def cli() -> list:
  script = shutil.which('coopjax', path=os.path.dirname(sys.executable))
  return [script] if script else [sys.executable, '-m', 'coopjax.main']


def run_all(commands, env=None):
  """Runs every ``[args...]`` of ``commands`` at once; their results."""
  environ = {k: v for k, v in os.environ.items() if k != 'COOPJAX_DEBUG'}
  environ.update(PYTHONPATH=REPO, JAX_PLATFORMS='cpu', **(env or {}))
  procs = [subprocess.Popen(cli() + list(args), cwd=REPO, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True) for args in commands]
  out = []
  for p in procs:
    stdout, stderr = p.communicate(timeout=120)
    out.append(types.SimpleNamespace(returncode=p.returncode, stdout=stdout,
                                     stderr=stderr))
  return out


def listing(path) -> list:
  return sorted(os.path.relpath(os.path.join(d, f), path)
                for d, dirs, files in os.walk(path) for f in dirs + files)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
  """Bad data files, a file where a workdir should be, a workdir of another
  config."""
  d = tmp_path_factory.mktemp('inputs')
  np.save(d / 'cols3.npy', np.zeros((10, 3), np.float32))
  nan = np.zeros((10, 2), np.float32)
  nan[3, 1] = np.nan
  np.save(d / 'nan.npy', nan)
  (d / 'empty.npy').write_bytes(b'')
  np.save(d / 'int16.npy', np.zeros((4, 8, 8, 1), np.int16))
  (d / 'a_file').write_text('x')
  other = d / 'other_run'
  other.mkdir()
  config = config_module('checkerboard').get_config()
  config.model.width = 7
  (other / 'config.json').write_text(config.to_json_best_effort())
  return d


# (name, args after --workdir, exit code, what the message must name)
CASES = [
    ('mistyped field', [CB, '--config.train.step=300'], 2,
     ["'train.step'", "did you mean 'train.steps'"]),
    ('unknown section', [CB, '--config.trian.steps=3'], 2, ["'trian.steps'"]),
    ('wrong type', [CB, '--config.train.steps=many'], 2,
     ['config.train.steps', 'many', 'int']),
    ('missing config file', ['--config=configs/nope.py'], 2,
     ["'configs/nope.py'", 'checkerboard.py']),
    ('unknown variant', [CB + ':drll'], 2, ["'drll'", "'reference'"]),
    ('unknown dataset', [CB, '--config.data.name=checkerbord'], 2,
     ["'checkerbord'", "did you mean 'checkerboard'"]),
    ('unknown mode', [CB, '--mode=samples'], 2,
     ["'samples'", 'train, sample, eval']),
    ('unknown task', [DIGITS, '--mode=inpiant'], 2,
     ["'inpiant'", "'inpaint'", 'guided']),
    ('mistyped flag', [CB, '--mdoe=x'], 2, ['mdoe']),
    ('zero interval', [CB, '--config.train.sample_every=0'], 2,
     ['config.train.sample_every must be >= 1',
      '--config.train.sample_every='
      f"{config_module('checkerboard').get_config().train.steps}."]),
    ('positional argument', [CB, 'train'], 2, ['Unexpected arguments: train']),
    ('sample without checkpoint', [CB, '--mode=sample'], 1,
     ['--mode=sample needs a trained checkpoint', '--workdir=']),
    ('task without checkpoint', [DIGITS, '--mode=guided'], 1,
     ['--mode=guided needs a trained checkpoint']),
    ('missing .npy', [CB, '--config.data.name=array',
                      '--config.data.path=FILES/missing.npy'], 1,
     ['missing.npy', 'does not exist', '[N, 2]']),
    ('.npy of the wrong shape', [CB, '--config.data.name=array',
                                 '--config.data.path=FILES/cols3.npy'], 1,
     ['cols3.npy', '(10, 3)', '[N, 2]']),
    ('.npy with NaN', [CB, '--config.data.name=array',
                       '--config.data.path=FILES/nan.npy'], 1,
     ['nan.npy', '1 non-finite']),
    ('empty .npy', [CB, '--config.data.name=array',
                    '--config.data.path=FILES/empty.npy'], 1,
     ['empty.npy', 'cannot be read']),
    ('images of the wrong dtype', [
        DIGITS, '--config.data.name=array', '--config.data.kind=images',
        '--config.data.path=FILES/int16.npy'], 1, ['int16.npy', 'int16']),
    ('tfds data not prepared', [
        '--config=configs/cifar10.py', '--config.data.tfds_dir=FILES/tfds'],
     1, ["'cifar10'"]),
    ('FID weights missing', [
        CB, '--config.eval.inception_path=FILES/inception.npz'], 1,
     ['inception_path', 'docs/fid.md']),
]


def checkerboard_width() -> int:
  """The quickstart config's EBM width, which the refusal names."""
  return config_module('checkerboard').get_config().model.width


@pytest.mark.slow
def test_every_bad_input_is_one_clear_line_and_leaves_nothing(files):
  fresh = lambda name: str(files / 'runs' / name.replace(' ', '_'))
  commands = [[a.replace('FILES', str(files)) for a in args]
              + [f'--workdir={fresh(name)}'] for name, args, _, _ in CASES]
  other = files / 'other_run'
  before = (listing(other), (other / 'config.json').read_text())
  extra = [
      ('workdir is a file', [CB, f'--workdir={files}/a_file'], 1,
       [f'--workdir={files}/a_file is an existing file']),
      ('workdir under a file', [CB, f'--workdir={files}/a_file/run'], 1,
       ['Cannot write', 'a parent of it is a file']),
      ('workdir of another config', [CB, f'--workdir={other}'], 1,
       [f'model.width: 7 in the workdir, {checkerboard_width()} now',
        '--allow_config_change']),
      ('missing workdir', [CB], 2, ['--workdir is required']),
  ]
  if os.path.isdir('/sys/kernel'):
    extra.append(('unwritable workdir', [CB, '--workdir=/sys/coopjax_run'], 1,
                  ['Cannot write', '/sys/coopjax_run']))
  commands += [args for _, args, _, _ in extra]
  results = run_all(commands)
  for (name, _, code, named), args, out in zip(CASES + extra, commands,
                                               results):
    err = out.stderr.strip()
    assert out.returncode == code, (name, args, out.returncode, err)
    assert 'Traceback' not in err + out.stdout, (name, err)
    assert err.startswith('coopjax: error: '), (name, err)
    assert len(err.splitlines()) <= 2 or name.startswith('tfds'), (name, err)
    assert '\\n' not in err and "\\'" not in err, (name, err)
    for text in named:
      assert text in err, (name, text, err)
  assert not os.path.exists(files / 'runs')  # nothing was created
  assert (listing(other), (other / 'config.json').read_text()) == before
  assert os.path.isfile(files / 'a_file')


@pytest.mark.slow
def test_help_and_debug(files):
  help_cb, help_digits, module_help, traceback = run_all([
      ['--help'], [DIGITS, '--help'], ['-h', CB + ':drl']]) + run_all(
          [[CB, f'--workdir={files}/runs/x', '--mode=samples']],
          env={'COOPJAX_DEBUG': '1'})
  for out in (help_cb, help_digits, module_help):
    assert out.returncode == 0, out.stderr
    assert 'configs/' in out.stdout and '--config.FIELD=VALUE' in out.stdout
    assert "default: 'None'" not in out.stdout
    assert len(out.stdout.splitlines()) < 15
  assert 'tasks: guided, compose, inpaint, ood, fewer_steps' in (
      help_digits.stdout)
  assert 'modes of drl on checkerboard' in module_help.stdout
  assert traceback.returncode != 0 and 'Traceback' in traceback.stderr
  assert not os.path.exists(files / 'runs')


def test_python_m_help_exits_zero():
  out = subprocess.run([sys.executable, '-m', 'coopjax.main', '--help'],
                       cwd=REPO, env={**os.environ, 'PYTHONPATH': REPO},
                       capture_output=True, text=True, timeout=120,
                       check=False)
  assert out.returncode == 0 and 'usage: coopjax' in out.stdout, out.stderr


def test_the_task_names_of_the_configs_are_the_algorithms_tasks():
  from coopjax import config  # pylint: disable=g-import-not-at-top
  from coopjax.cdrl import tasks as cdrl_tasks  # pylint: disable=g-import-not-at-top
  from coopjax.coopflow import tasks as coopflow_tasks  # pylint: disable=g-import-not-at-top
  from coopjax.latent_flow import tasks as latent_flow_tasks  # pylint: disable=g-import-not-at-top
  for name, module in (('cdrl', cdrl_tasks), ('coopflow', coopflow_tasks),
                       ('latent_flow', latent_flow_tasks)):
    for kind in ('images', 'points'):
      algo = types.SimpleNamespace(kind=kind)
      assert tuple(module.tasks_for(algo)) == config.tasks(name, kind), (
          name, kind)


def test_the_preflight_knows_where_the_best_checkpoint_is():
  from coopjax import preflight  # pylint: disable=g-import-not-at-top
  from coopjax.trainer import best  # pylint: disable=g-import-not-at-top
  assert preflight.BEST_SUBDIR == best.SUBDIR


def test_cpu_devices_that_contradict_xla_flags_are_refused(tmp_path):
  # (A run on --cpu_devices=2: tests/trainer/test_compile_cache.py.)
  clash, = run_all([[CB, f'--workdir={tmp_path / "clash"}',
                     '--cpu_devices=3']],
                   env={'XLA_FLAGS': '--xla_force_host_platform_device_count=2'})
  assert clash.returncode == 2
  assert clash.stderr.strip() == (
      'coopjax: error: --cpu_devices=3 but XLA_FLAGS sets '
      '--xla_force_host_platform_device_count=2; drop one of the two.')
  assert not os.path.exists(tmp_path / 'clash')


def test_cpu_devices_in_a_process_whose_jax_has_started_is_refused(
    tmp_path, capsys, monkeypatch):
  from coopjax import main as cli  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  n = len(jax.local_devices(backend='cpu')) + 1
  monkeypatch.delenv('XLA_FLAGS', raising=False)  # restored afterwards
  assert cli.run(['coopjax', CB, f'--workdir={tmp_path / "run"}',
                  f'--cpu_devices={n}']) == 1
  err = capsys.readouterr().err
  assert f'--cpu_devices={n} did not take effect: JAX had already started' in err
