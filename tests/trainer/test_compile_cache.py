"""The command line's persistent compilation cache (coopjax.trainer.compile_cache)."""

import os
import subprocess
import sys

import pytest

from coopjax.trainer import compile_cache
from helpers import REPO
from helpers.trainer_procs import TINY, env


def test_the_default_directory_follows_the_environment(tmp_path):
  assert compile_cache.default_dir({'HOME': '/h', 'XDG_CACHE_HOME': '/x'}) == (
      '/x/coopjax/jax')
  assert compile_cache.default_dir({'COOPJAX_COMPILE_CACHE': '/c',
                                    'XDG_CACHE_HOME': '/x'}) == '/c'
  assert compile_cache.default_dir({}) == os.path.join(
      os.path.expanduser('~'), '.cache', 'coopjax', 'jax')


@pytest.mark.parametrize('flag, jax_dir, enabled, multi, expected', [
    (None, '', True, False, '/x/coopjax/jax'),  # the default
    ('/f', '', True, False, '/f'),               # the flag wins
    ('/f', '/j', False, True, '/f'),             # ... over everything
    ('', '', True, False, None),                 # the flag turns it off
    (None, '/j', True, False, None),             # JAX's own directory stays
    (None, '', False, False, None),              # JAX's cache switched off
    (None, '', True, True, None),                # multi-process CPU: off
])
def test_which_directory_the_command_line_sets(flag, jax_dir, enabled, multi,
                                               expected):
  assert compile_cache.choose(flag, jax_dir, enabled, multi,
                              {'XDG_CACHE_HOME': '/x'}) == expected


def _entries(path):
  return sorted(os.listdir(path)) if os.path.isdir(path) else []


@pytest.mark.slow
def test_a_second_run_of_the_same_config_compiles_nothing_new(tmp_path):
  """The first run fills the directory of --compile_cache; a second run of
  the same config in another workdir finds every program there (it adds no
  entry), and --compile_cache= writes none."""
  cache = str(tmp_path / 'cache')
  e = env(devices=1)
  e.pop('JAX_COMPILATION_CACHE_DIR')  # the flag alone decides
  e['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'

  def run(workdir, *flags):
    cmd = [sys.executable, '-m', 'coopjax.main',
           '--config=configs/checkerboard.py', f'--workdir={tmp_path / workdir}',
           *TINY, '--config.train.steps=2', '--config.train.sample_every=100',
           '--config.sample.num=16', *flags]
    done = subprocess.run(cmd, cwd=REPO, env=e, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout

  run('a', f'--compile_cache={cache}')
  first = _entries(cache)
  assert len(first) >= 3, first  # at least the step, sampler, initialiser
  assert any('train_step' in name for name in first), first
  run('b', f'--compile_cache={cache}')
  assert _entries(cache) == first
  off = str(tmp_path / 'off')
  e['COOPJAX_COMPILE_CACHE'] = off  # where the default would write
  # This run also checks --cpu_devices (one subprocess fewer in CI): with no
  # device count in XLA_FLAGS, it trains on 2 CPU devices.
  e['XLA_FLAGS'] = ''
  out = run('c', '--compile_cache=', '--cpu_devices=2')
  assert not _entries(off)
  assert ' 2 device(s)' in out, out
