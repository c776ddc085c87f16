"""CDRL train-step time of the authors' PyTorch code and of coopjax, side by
side on this machine, and the ratio. Not run in CI.

    python tools/side_by_side.py --authors=/path/to/CDRL \\
        --torch_python=/path/to/torch-venv/bin/python [--which=toy,cifar]
        [--batch=2] [--steps=3]

``--authors`` is a checkout of ``AlvinZhuyx/CDRL`` (fetched separately; none of
its code is in this repository). ``--torch_python`` is an interpreter with
``torch`` (and, optionally, ``torch_ema``, ``torchvision``, ``matplotlib``:
modules that are missing are replaced by empty stand-ins, since the timed
iteration does not use them).

What runs, per setting:

- ``toy``: the authors' 2-D iteration (``toy_example.py``: batch 2500, their
  widths) against coopjax's ``configs/checkerboard.py:reference``;
- ``cifar``: the authors' CIFAR-10 iteration (``main_uncond.py`` ``train``:
  their EBM and U-Net, batch ``--batch`` of random images) against coopjax's
  ``configs/cifar10.py`` at the same batch.

The authors' side executes their own source: the tool parses their file,
runs its module-level definitions and the statements of ``train`` that build
the networks, optimisers and schedules, then times the body of their training
loop, unchanged, with loop counters that skip their printing, plotting and
checkpointing branches. ``.cuda()`` is a no-op and DDP the identity on a CPU.
Each side's first iteration (warm-up, compilation) is reported separately.
"""

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# --------------------------------------------------------------------------
# The authors' side (runs under --torch_python).


def _stub_missing(names):
  """Empty stand-in modules for optional imports of the authors' files."""
  for name in names:
    try:
      __import__(name)
    except ImportError:
      parts = name.split('.')
      for i in range(1, len(parts) + 1):
        sub = '.'.join(parts[:i])
        if sub not in sys.modules:
          sys.modules[sub] = _Anything(sub)


class _Anything(types.ModuleType):
  """A module whose every attribute is a callable that returns a stand-in."""

  def __getattr__(self, name):
    if name.startswith('__'):
      raise AttributeError(name)
    return _Anything(f'{self.__name__}.{name}')

  def __call__(self, *args, **kwargs):
    return _Anything(self.__name__ + '()')


def _parse(path):
  with open(path) as f:
    return ast.parse(f.read(), filename=path)


def _run(stmts, namespace, path):
  exec(compile(ast.Module(body=list(stmts), type_ignores=[]), path, 'exec'),  # pylint: disable=exec-used
       namespace)


def _training_loop(stmts):
  """The last ``for counter in ...`` statement among ``stmts`` and its index."""
  for i in reversed(range(len(stmts))):
    node = stmts[i]
    if (isinstance(node, ast.For) and isinstance(node.target, ast.Name)
        and node.target.id == 'counter'):
      return i, node
  raise SystemExit('no `for counter in ...` training loop found: is this '
                   'the AlvinZhuyx/CDRL checkout the tool was written for?')


def _time_body(body, namespace, path, steps, first_counter=1):
  import torch  # pylint: disable=g-import-not-at-top
  code = compile(ast.Module(body=body, type_ignores=[]), path, 'exec')
  times = []
  for i in range(steps + 1):
    namespace['counter'] = first_counter + i
    start = time.perf_counter()
    exec(code, namespace)  # pylint: disable=exec-used
    if torch.cuda.is_available():
      torch.cuda.synchronize()
    times.append(time.perf_counter() - start)
  return {'first_s': times[0], 'step_s': sorted(times[1:])[len(times[1:]) // 2]}


def _authors_setting(which, authors, batch, steps):
  import torch  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(os.cpu_count())
  _stub_missing(['torch_ema', 'torchvision', 'torchvision.transforms',
                 'matplotlib', 'matplotlib.pyplot', 'pytorch_fid_wrapper'])
  if not torch.cuda.is_available():
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    module_to, tensor_to = torch.nn.Module.to, torch.Tensor.to
    on_cpu = lambda a: tuple('cpu' if 'cuda' in str(v) else v for v in a)
    torch.nn.Module.to = lambda self, *a, **k: module_to(self, *on_cpu(a), **k)
    torch.Tensor.to = lambda self, *a, **k: tensor_to(self, *on_cpu(a), **k)
  lambda_lr = torch.optim.lr_scheduler.LambdaLR
  class LambdaLR(lambda_lr):  # their `verbose=` argument left torch in 2.7
    def __init__(self, *a, verbose=None, **k):
      del verbose
      super().__init__(*a, **k)
  torch.optim.lr_scheduler.LambdaLR = LambdaLR
  sys.path.insert(0, authors)
  os.chdir(tempfile.mkdtemp())  # their files write logs where they run...
  for name in ('toy_example.py', 'main_uncond.py'):  # ...and copy themselves
    shutil.copyfile(os.path.join(authors, name), name)
  if which == 'toy':
    path = os.path.join(authors, 'toy_example.py')
    tree = _parse(path)
    i, loop = _training_loop(tree.body)
    namespace = {'__name__': 'authors_toy', '__file__': 'toy_example.py'}
    _run(tree.body[:i], namespace, path)
    return _time_body(loop.body, namespace, path, steps)
  path = os.path.join(authors, 'main_uncond.py')
  tree = _parse(path)
  namespace = {'__name__': 'authors_cifar', '__file__': 'main_uncond.py'}
  _run([n for n in tree.body if not isinstance(n, ast.If)
        or 'main' not in ast.unparse(n.test)], namespace, path)
  train = next(n for n in tree.body
               if isinstance(n, ast.FunctionDef) and n.name == 'train')
  i, loop = _training_loop(train.body)
  build = next(j for j, n in enumerate(train.body)
               if 'EBM(' in ast.unparse(n))
  device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')

  def batches():
    while True:
      yield torch.rand(batch, 3, 32, 32, device=device) * 2 - 1, None

  torch.nn.parallel.DistributedDataParallel = lambda m, **k: m
  namespace.update(device=device, train_iter=batches(), trainloader=None,
                   train_sampler=None, args=types.SimpleNamespace(local_rank=0))
  setup = [n for n in train.body[build:i]  # not the `if mode == 'fid'` exit
           if not (isinstance(n, ast.If) and 'mode' in ast.unparse(n.test))]
  _run(setup, namespace, path)
  namespace['start_iter'] = 0
  return _time_body(loop.body, namespace, path, steps)


# --------------------------------------------------------------------------
# coopjax's side (runs under this interpreter).


def _ours(which, batch, steps):
  sys.path.insert(0, os.path.join(ROOT, 'bench'))
  import common  # pylint: disable=g-import-not-at-top
  spec = ('checkerboard.py:reference' if which == 'toy' else 'cifar10.py')
  config = common.load_config(os.path.join(ROOT, 'configs', spec))
  if which == 'cifar':
    config.data.batch_size = batch
  n = config.data.batch_size
  dataset = common.dataset_for(config, max(n, 8), prefer_random=which != 'toy')
  algo, mesh, state = common.fresh_state(config, dataset)
  stepper = common.Stepper(config, algo, mesh, state, dataset.batch(0, n, 0))
  first_s, times = common.compile_and_time(lambda _: stepper(), steps)
  return {'first_s': first_s, 'step_s': sorted(times)[len(times) // 2],
          'batch': n}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--authors', required=True,
                      help='checkout of AlvinZhuyx/CDRL')
  parser.add_argument('--torch_python', default='',
                      help='interpreter with torch (default: this one)')
  parser.add_argument('--which', default='toy,cifar')
  parser.add_argument('--batch', type=int, default=2,
                      help='CIFAR-10 batch (the toy uses their 2500)')
  parser.add_argument('--steps', type=int, default=3)
  parser.add_argument('--authors_child', default='', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.authors_child:
    print(json.dumps(_authors_setting(args.authors_child, args.authors,
                                      args.batch, args.steps)))
    return 0
  if not os.path.isfile(os.path.join(args.authors, 'toy_example.py')):
    parser.error(f'--authors={args.authors}: no toy_example.py there; pass '
                 'a checkout of AlvinZhuyx/CDRL')
  for which in args.which.split(','):
    cmd = [args.torch_python or sys.executable, os.path.abspath(__file__),
           f'--authors={os.path.abspath(args.authors)}',
           f'--authors_child={which}', f'--batch={args.batch}',
           f'--steps={args.steps}']
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [l for l in proc.stdout.splitlines() if l.startswith('{')]
    if proc.returncode or not lines:
      print(f'{which}: the authors\' side failed:\n{proc.stderr[-2000:]}')
      return 1
    theirs = json.loads(lines[-1])
    ours = _ours(which, args.batch, args.steps)
    print(f'{which} (batch {ours["batch"]}): authors {theirs["step_s"]:.3f} '
          f's/step (first {theirs["first_s"]:.1f} s), coopjax '
          f'{ours["step_s"]:.3f} s/step (first, with compile, '
          f'{ours["first_s"]:.1f} s): coopjax is '
          f'{theirs["step_s"] / ours["step_s"]:.2f}x the authors\' speed',
          flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
