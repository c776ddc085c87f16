"""The README's example runs, and .ci/run uses the README's own two commands."""

import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(path):
  with open(os.path.join(REPO, path), encoding='utf-8') as f:
    return f.read()


def python_blocks():
  """The README's Python examples, by a name in their first line."""
  blocks = re.findall(r'```python\n(.*?)```', read('README.md'), re.S)
  assert len(blocks) == 3
  return {'config': blocks[0], 'langevin': blocks[1], 'blackjax': blocks[2]}


@pytest.mark.slow
def test_langevin_example_runs():
  code = python_blocks()['langevin']
  assert 'from coopjax.langevin import langevin' in code
  exec(compile(code, 'README.md', 'exec'), {})  # pylint: disable=exec-used


@pytest.mark.slow
def test_blackjax_example_runs():
  pytest.importorskip('blackjax')
  code = python_blocks()['blackjax']
  assert 'e = s ** 2 / 2' in code
  exec(compile(code, 'README.md', 'exec'), {})  # pylint: disable=exec-used


def test_config_example_builds_the_base_config_and_its_variants(tmp_path):
  code = python_blocks()['config']
  scope = {'__file__': str(tmp_path / 'my_svhn.py')}
  exec(compile(code, 'README.md', 'exec'), scope)  # pylint: disable=exec-used
  c = scope['get_config']()
  assert c.algorithm == 'cdrl' and c.data.name == 'svhn_cropped'
  assert not c.data.random_flip and c.model.width == 128
  drl = scope['get_config']('drl')
  assert drl.algorithm == 'drl' and drl.model.initializer == 'none'
  with pytest.raises(ValueError, match="Unknown variant 'dlr' of "
                     "configs/my_svhn.py; known: '', 'drl'"):
    scope['get_config']('dlr')


def test_ci_runs_the_readme_commands():
  bash = re.findall(r'```bash\n(.*?)```', read('README.md'), re.S)
  setup = bash[0].splitlines()[0]
  test = bash[1].strip()
  ci = read('.ci/run')
  assert 'pip install -e ".[dev]"' in setup and setup.split('&& ')[-1] in ci
  assert test in ci
