"""Golden figures of the tiny checkerboard run (tests/helpers/trainer.py).

``tests/golden/checkerboard_tiny.json`` holds the losses the run logs at
steps 2 and 4 and the L2 norm of every parameter array at step 4, on 4 fake
CPU devices (the test session's setting). Regenerate it after a deliberate
change of the numbers (a new algorithm detail, a JAX upgrade) with::

    PYTHONPATH=. python tools/make_golden.py

and say in the commit why the numbers moved.
"""

import json
import os

import jax
import numpy as np

from helpers import REPO

PATH = os.path.join(REPO, 'tests', 'golden', 'checkerboard_tiny.json')
LOSSES = ('ebm_loss', 'init_loss')


def summary(workdir: str, state) -> dict:
  """The run's logged losses per step and its parameter norms at the end."""
  with open(os.path.join(workdir, 'metrics.jsonl'), encoding='utf-8') as f:
    lines = [json.loads(line) for line in f]
  losses = {str(l['step']): {k: l[k] for k in LOSSES}
            for l in lines if 'ebm_loss' in l}
  flat = jax.tree_util.tree_flatten_with_path(jax.device_get(state.params))[0]
  norms = {jax.tree_util.keystr(path): float(np.linalg.norm(np.asarray(leaf)))
           for path, leaf in flat}
  return {'step': int(state.step), 'losses': losses, 'param_norms': norms}


def load() -> dict:
  with open(PATH, encoding='utf-8') as f:
    return json.load(f)


def write(figures: dict) -> None:
  with open(PATH, 'w', encoding='utf-8') as f:
    json.dump(figures, f, indent=1, sort_keys=True)
    f.write('\n')


def assert_matches(figures: dict, rtol: float = 1e-4) -> None:
  """``figures`` equal the golden ones (keys exactly, values to ``rtol``)."""
  want = load()
  assert figures['step'] == want['step']
  assert sorted(figures['losses']) == sorted(want['losses'])
  for step, values in want['losses'].items():
    for k, v in values.items():
      np.testing.assert_allclose(figures['losses'][step][k], v, rtol=rtol,
                                 atol=1e-6, err_msg=f'{k} at step {step}')
  assert sorted(figures['param_norms']) == sorted(want['param_norms'])
  for k, v in want['param_norms'].items():
    np.testing.assert_allclose(figures['param_norms'][k], v, rtol=rtol,
                               err_msg=k)
