"""The README's example runs, and .ci/run uses the README's own two commands."""

import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(path):
  with open(os.path.join(REPO, path), encoding='utf-8') as f:
    return f.read()


@pytest.mark.slow
def test_langevin_example_runs():
  blocks = re.findall(r'```python\n(.*?)```', read('README.md'), re.S)
  assert len(blocks) == 1
  exec(compile(blocks[0], 'README.md', 'exec'), {})  # pylint: disable=exec-used


def test_ci_runs_the_readme_commands():
  bash = re.findall(r'```bash\n(.*?)```', read('README.md'), re.S)
  setup = bash[0].splitlines()[0]
  test = bash[1].strip()
  ci = read('.ci/run')
  assert 'pip install -e ".[dev]"' in setup and setup.split('&& ')[-1] in ci
  assert test in ci
