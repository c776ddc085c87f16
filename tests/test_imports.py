"""Imports: no cycles, the package layering, and no TensorFlow at import time.

The graph is built statically with ``ast`` from every module of coopjax/,
including imports inside functions; ``from coopjax.x import y`` is an edge to
``coopjax.x.y`` where that is a module, else to ``coopjax.x``. Imports by
string (``importlib.import_module``, as in coopjax.registry) are not seen.
"""

import ast
import os
import subprocess
import sys

import pytest

from helpers import REPO

ALGORITHMS = ('coopjax.cdrl', 'coopjax.coopflow', 'coopjax.latent_flow')


def module_files(root: str, package: str) -> dict:
  """{dotted module name: path} of every .py file under ``root``."""
  out = {}
  for folder, dirs, files in os.walk(root):
    dirs[:] = sorted(d for d in dirs if d != '__pycache__')
    rel = os.path.relpath(folder, root)
    prefix = package if rel == '.' else package + '.' + rel.replace(
        os.sep, '.')
    for f in sorted(files):
      if f.endswith('.py'):
        name = prefix if f == '__init__.py' else f'{prefix}.{f[:-3]}'
        out[name] = os.path.join(folder, f)
  return out


def _known(name: str, modules) -> str:
  """``name`` if it is a module, else its longest prefix that is one."""
  while name and name not in modules:
    name = name.rpartition('.')[0]
  return name


def import_graph(root: str, package: str) -> dict:
  """{module: set of modules of ``package`` it imports}, statically."""
  modules = module_files(root, package)
  graph = {}
  for name, path in modules.items():
    with open(path, encoding='utf-8') as f:
      tree = ast.parse(f.read(), path)
    is_pkg = path.endswith('__init__.py')
    edges = set()
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ''
        if node.level:  # relative: from the module's own package up
          parts = name.split('.')
          parts = parts if is_pkg else parts[:-1]
          parts = parts[:len(parts) - node.level + 1]
          base = '.'.join(parts + ([base] if base else []))
        targets = [f'{base}.{a.name}' if f'{base}.{a.name}' in modules
                   else base for a in node.names]
      else:
        continue
      for t in targets:
        if t == package or t.startswith(package + '.'):
          edges.add(_known(t, modules))
    edges.discard(name)
    graph[name] = edges
  return graph


def find_cycle(graph: dict):
  """One import cycle as a list [a, b, ..., a], or None."""
  state, stack = {}, []

  def visit(node):
    state[node] = 'open'
    stack.append(node)
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == 'open':
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state:
        found = visit(nxt)
        if found:
          return found
    stack.pop()
    state[node] = 'done'
    return None

  for node in sorted(graph):
    if node not in state:
      found = visit(node)
      if found:
        return found
  return None


def cycles(graph: dict) -> list:
  """The strongly connected components of more than one module (sets)."""
  components = []
  for node in sorted(graph):
    if any(node in c for c in components):
      continue
    down = reachable(graph, node)
    component = {m for m in down if node in reachable(graph, m)}
    if component:
      components.append(component | {node})
  return components


def reachable(graph: dict, start: str) -> set:
  seen, todo = set(), [start]
  while todo:
    for nxt in graph.get(todo.pop(), ()):
      if nxt not in seen:
        seen.add(nxt)
        todo.append(nxt)
  return seen


def within(name: str, package: str) -> bool:
  return name == package or name.startswith(package + '.')


@pytest.fixture(scope='module')
def graph():
  return import_graph(os.path.join(REPO, 'coopjax'), 'coopjax')


def test_the_graph_sees_every_module_and_its_imports(graph):
  assert {'coopjax', 'coopjax.samplers.langevin', 'coopjax.cdrl.model',
          'coopjax.trainer.loop', 'coopjax.main'} <= set(graph)
  # a plain import, a from-import of a module, and of a name
  assert 'coopjax.samplers.langevin' in graph['coopjax.langevin']
  assert 'coopjax.cdrl.schedules' in graph['coopjax.cdrl.model']


def test_no_import_cycles(graph):
  new = cycles(graph)
  paths = [find_cycle({m: graph[m] & c for m in c}) for c in new]
  assert not new, 'import cycles: ' + '; '.join(' -> '.join(p) for p in paths)


def test_the_cycle_finder_finds_cycles_through_packages_and_functions(
    tmp_path):
  pkg = tmp_path / 'pkg'
  (pkg / 'sub').mkdir(parents=True)
  (pkg / '__init__.py').write_text('')
  (pkg / 'a.py').write_text('from pkg.sub import b\n')
  (pkg / 'sub' / '__init__.py').write_text('from . import c\n')
  (pkg / 'sub' / 'b.py').write_text('import os\n')
  (pkg / 'sub' / 'c.py').write_text(
      'def f():\n  from pkg.a import name\n')
  g = import_graph(str(pkg), 'pkg')
  assert g['pkg.a'] == {'pkg.sub.b'} and g['pkg.sub'] == {'pkg.sub.c'}
  assert g['pkg.sub.c'] == {'pkg.a'}
  assert find_cycle(g) is None and cycles(g) == []
  (pkg / 'sub' / 'b.py').write_text('from pkg.sub import c\n')
  assert find_cycle(import_graph(str(pkg), 'pkg')) == [
      'pkg.a', 'pkg.sub.b', 'pkg.sub.c', 'pkg.a']
  # relative imports, and edges to and from a package's __init__
  (pkg / 'sub' / 'b.py').write_text('from .. import sub\n')
  assert find_cycle(import_graph(str(pkg), 'pkg')) == [
      'pkg.a', 'pkg.sub.b', 'pkg.sub', 'pkg.sub.c', 'pkg.a']
  (pkg / 'sub' / 'c.py').write_text('from .b import x\n')
  g = import_graph(str(pkg), 'pkg')
  assert find_cycle(g) == ['pkg.sub.b', 'pkg.sub', 'pkg.sub.c', 'pkg.sub.b']
  assert cycles(g) == [{'pkg.sub', 'pkg.sub.b', 'pkg.sub.c'}]


def test_samplers_import_nothing_else_from_coopjax(graph):
  for name, edges in graph.items():
    if within(name, 'coopjax.samplers'):
      bad = sorted(e for e in edges if not within(e, 'coopjax.samplers'))
      assert not bad, f'{name} imports {bad}'


@pytest.mark.parametrize('package', ['coopjax.metrics', 'coopjax.data'])
def test_metrics_and_data_reach_neither_trainer_nor_algorithms(graph,
                                                               package):
  for name in graph:
    if within(name, package):
      bad = sorted(m for m in reachable(graph, name)
                   if any(within(m, p) for p in ('coopjax.trainer',) +
                          ALGORITHMS))
      assert not bad, f'{name} imports (maybe through others) {bad}'


def test_trainer_does_not_import_the_algorithms(graph):
  for name, edges in graph.items():
    if within(name, 'coopjax.trainer'):
      bad = sorted(e for e in edges
                   if any(within(e, p) for p in ALGORITHMS))
      assert not bad, f'{name} imports {bad}'


@pytest.mark.slow
@pytest.mark.parametrize('modules', [
    'coopjax.langevin, coopjax.cdrl, coopjax.trainer.loop',
    'coopjax.metrics, coopjax.trainer.reports'])
def test_importing_does_not_import_tensorflow(tmp_path, modules):
  # Stub packages, so that an import of TensorFlow is seen even where it is
  # not installed (an import that succeeded lands in sys.modules).
  for name in ('tensorflow', 'tensorflow_datasets'):
    (tmp_path / name).mkdir()
    (tmp_path / name / '__init__.py').write_text('')
  code = (f'import sys, {modules}; '
          'bad = [m for m in sys.modules if m.split(".")[0] in '
          '("tensorflow", "tensorflow_datasets")]; '
          'assert not bad, bad')
  env = {**os.environ, 'PYTHONPATH': str(tmp_path)}
  subprocess.run([sys.executable, '-c', code], check=True, timeout=120,
                 env=env)
