"""A small mutation tester: how many single-operator changes of a module do
its tests catch? Not part of CI (each mutant is one pytest run).

    PYTHONPATH=. python tools/mutate.py coopjax/trainer/state.py \
        tests/trainer/test_state.py tests/trainer/test_parallel.py \
        --pytest-args='-m "not slow"' [--max=40] [--timeout=300]

Each mutant changes one thing in a function body of the module (docstrings
excepted): an arithmetic operator (+ - * / swapped), a comparison (< <= > >=
== != swapped), a boolean operator (and/or, & |), a number (n -> n + 1, 0.5
-> 1.5), ``True``/``False``, ``not x`` -> ``x``, or a ``return x`` ->
``return None``; the module is rewritten in place (``ast.unparse``), the
tests run with ``-x``, and the file is restored. A mutant is killed when the
tests fail (or time out). Prints every survivor (``#N``: its number) and the
kill rate.

``--max=N`` takes N mutants spread evenly over the module (a sample: each
run is one pytest process, ~10-60 s on a 2-core CPU); ``--only=N1,N2`` runs
just those (e.g. the survivors of an earlier run, after adding tests; keep
the same ``--max``, the numbers do not depend on it). The module is
rewritten in place: run it in a scratch copy of the repository
(``git archive HEAD | tar -x -C /tmp/mut``), not in a checkout you are
editing. Results per module: bench/RESULTS.md, "Mutation testing".
"""

import argparse
import ast
import copy
import os
import shlex
import subprocess
import sys
import time

SWAP_BIN = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div,
            ast.Div: ast.Mult, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd,
            ast.FloorDiv: ast.Mult, ast.Pow: ast.Mult}
SWAP_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
            ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
            ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn,
            ast.NotIn: ast.In}


def _is_docstring(node, parents):
  parent = parents.get(node)
  return (isinstance(node, ast.Constant) and isinstance(node.value, str) and
          isinstance(parent, ast.Expr))


def sites(tree):
  """``(index, description)`` of every mutable node inside a function."""
  parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
  in_function = set()
  for fn in ast.walk(tree):
    if isinstance(fn, (ast.FunctionDef, ast.Lambda)):
      for n in ast.walk(fn):
        in_function.add(n)
  out = []
  for i, node in enumerate(ast.walk(tree)):
    if node not in in_function or _is_docstring(node, parents):
      continue
    line = getattr(node, 'lineno', '?')
    if isinstance(node, ast.BinOp) and type(node.op) in SWAP_BIN:
      out.append((i, f'line {line}: {type(node.op).__name__} -> '
                     f'{SWAP_BIN[type(node.op)].__name__}'))
    elif isinstance(node, ast.Compare) and type(node.ops[0]) in SWAP_CMP:
      out.append((i, f'line {line}: {type(node.ops[0]).__name__} -> '
                     f'{SWAP_CMP[type(node.ops[0])].__name__}'))
    elif isinstance(node, ast.BoolOp):
      out.append((i, f'line {line}: and <-> or'))
    elif (isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
          and not isinstance(node.value, bool)):
      out.append((i, f'line {line}: {node.value!r} -> {node.value + 1!r}'))
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
      out.append((i, f'line {line}: {node.value} -> {not node.value}'))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
      out.append((i, f'line {line}: not x -> x'))
    elif isinstance(node, ast.Return) and node.value is not None:
      out.append((i, f'line {line}: return x -> return None'))
  return out


def mutate(tree, index):
  """A copy of ``tree`` with node number ``index`` (ast.walk order) changed."""
  tree = copy.deepcopy(tree)
  for i, node in enumerate(ast.walk(tree)):
    if i != index:
      continue
    if isinstance(node, ast.BinOp):
      node.op = SWAP_BIN[type(node.op)]()
    elif isinstance(node, ast.Compare):
      node.ops[0] = SWAP_CMP[type(node.ops[0])]()
    elif isinstance(node, ast.BoolOp):
      node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
      node.value = not node.value
    elif isinstance(node, ast.Constant):
      node.value = node.value + 1
    elif isinstance(node, ast.UnaryOp):
      return _replace(tree, node, node.operand)
    elif isinstance(node, ast.Return):
      node.value = ast.Constant(None)
    return tree
  raise IndexError(index)


def _replace(tree, old, new):
  for parent in ast.walk(tree):
    for field, value in ast.iter_fields(parent):
      if value is old:
        setattr(parent, field, new)
        return tree
      if isinstance(value, list) and any(v is old for v in value):
        setattr(parent, field, [new if v is old else v for v in value])
        return tree
  raise ValueError('node not found')


def run_tests(tests, extra, timeout):
  cmd = [sys.executable, '-m', 'pytest', '-q', '-x', '-p', 'no:cacheprovider',
         *shlex.split(extra), *tests]
  try:
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, check=False)
    return r.returncode == 0
  except subprocess.TimeoutExpired:
    return False


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('module')
  p.add_argument('tests', nargs='+')
  p.add_argument('--pytest-args', default='')
  p.add_argument('--max', type=int, default=0,
                 help='at most this many mutants, evenly spread (0: all)')
  p.add_argument('--timeout', type=float, default=300)
  p.add_argument('--only', default='',
                 help='comma-separated mutant numbers (the #N a previous run '
                      'printed) to run, e.g. to re-run the survivors')
  args = p.parse_args()
  original = open(args.module, encoding='utf-8').read()
  tree = ast.parse(original)
  todo = sites(tree)
  if args.max and len(todo) > args.max:
    step = len(todo) / args.max
    todo = [todo[int(i * step)] for i in range(args.max)]
  if args.only:
    keep = {int(i) for i in args.only.split(',')}
    todo = [t for t in todo if t[0] in keep]
  if not run_tests(args.tests, args.pytest_args, args.timeout):
    sys.exit('The tests fail on the unmutated module; fix them first.')
  survivors, start = [], time.time()
  try:
    for n, (index, what) in enumerate(todo, 1):
      with open(args.module, 'w', encoding='utf-8') as f:
        f.write(ast.unparse(mutate(tree, index)) + '\n')
      ok = run_tests(args.tests, args.pytest_args, args.timeout)
      print(f'[{n}/{len(todo)}] {"SURVIVED" if ok else "killed  "} '
            f'#{index} {what}', flush=True)
      if ok:
        survivors.append(f'#{index} {what}')
  finally:
    with open(args.module, 'w', encoding='utf-8') as f:
      f.write(original)
  killed = len(todo) - len(survivors)
  print(f'{args.module}: {killed}/{len(todo)} mutants killed '
        f'({100.0 * killed / max(len(todo), 1):.0f}%) in '
        f'{time.time() - start:.0f} s')
  for s in survivors:
    print('  survived:', s)


if __name__ == '__main__':
  main()
