"""A new closure over the same function does not recompile the chain. (coopjax.samplers.closures)"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from coopjax.samplers import closures
from coopjax.samplers.langevin import langevin


def run(log_prob, n=8):
  return langevin(log_prob, jnp.zeros((n, 2)), jax.random.key(0), n_steps=2,
                  step_size=0.5)[0]


def test_new_closures_over_new_arrays_do_not_retrace():
  traces = []   # closed over by log_prob: appends must reach this list

  def log_prob(x, mean, scale=1.0):
    traces.append(1)
    return -0.5 * jnp.sum(((x - mean) / scale) ** 2, axis=-1)

  results = []
  for m in (0.0, 1.0, 2.0):
    mean = jnp.full((2,), m)
    results.append(run(lambda x: log_prob(x, mean)))   # a new lambda each time
  n_traces = len(traces)
  assert n_traces > 0
  # The closed-over array is an input, not a constant: results follow it
  # (same noise; two steps of drift (s^2/2)(mean - x) move 1 - 0.875^2 of it).
  np.testing.assert_allclose(results[2] - results[1], 1 - 0.875 ** 2,
                             rtol=1e-5)
  for m in (3.0, 4.0):
    run(functools.partial(log_prob, mean=jnp.full((2,), m)))
  n_partial = len(traces)
  run(functools.partial(log_prob, mean=jnp.full((2,), 5.0)))
  assert len(traces) == n_partial
  run(lambda x: log_prob(x, jnp.zeros(2)) + 0.0 * jnp.sum(x, -1))
  assert len(traces) > n_partial   # other code does trace
  n = len(traces)
  run(lambda x: log_prob(x, jnp.zeros(2)), n=9)
  assert len(traces) > n   # a new shape does retrace
  assert len(set(map(id, results))) == 3


def test_closed_over_python_numbers_are_compile_time_constants():
  traces = []

  def make(scale):
    def log_prob(x):
      traces.append(1)
      return -0.5 * jnp.sum((x / scale) ** 2, axis=-1)
    return log_prob

  run(make(1.0))
  n = len(traces)
  run(make(1.0))
  assert len(traces) == n
  run(make(2.0))
  assert len(traces) > n


def test_bound_methods_and_rebuilt_functions_behave_as_the_originals():

  class Model:
    def __init__(self, w):
      self.w = w

    def log_prob(self, x, shift=jnp.ones(2)):
      return -0.5 * jnp.sum((x * self.w - shift) ** 2, axis=-1)

  x = jnp.arange(6.0).reshape(3, 2)
  model = Model(2.0)
  f = closures.as_pytree(model.log_prob)
  np.testing.assert_array_equal(f(x), model.log_prob(x))
  leaves, treedef = jax.tree.flatten(f)
  assert len(leaves) == 1   # the array default; the float w is static
  doubled = jax.tree.unflatten(treedef, [2 * l for l in leaves])
  np.testing.assert_array_equal(doubled(x), model.log_prob(x, 2 * jnp.ones(2)))

  def fact(n):   # a recursive closure
    return 1 if n == 0 else n * fact(n - 1)
  assert closures.as_pytree(fact)(4) == 24
