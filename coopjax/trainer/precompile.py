"""Compiling the train step while the state is still being built.

At full size the train step takes most of a minute to compile, and building
the state (initialising the networks, which is a compile of its own, and
restoring a checkpoint) takes a good part of another. Both depend only on
shapes, so :func:`start` compiles the step from the state's abstract shapes
(``jax.eval_shape``) in a background thread while the main thread builds the
real state. JAX caches the executable: the first call with arguments of the
same shapes, dtypes and shardings runs it without compiling again.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import jax
from jax.sharding import Mesh

from coopjax.trainer import parallel
from coopjax.trainer import state as ts


def abstract_state(algo, init_batch: Any, mesh: Mesh) -> ts.TrainState:
  """The shapes, dtypes and (replicated) shardings of the train state that
  ``ts.create(*algo.init_variables(key, init_batch), algo.optimizers)``
  placed on ``mesh`` would have; nothing is computed."""
  shapes = jax.eval_shape(
      lambda k, b: ts.create(*algo.init_variables(k, b), algo.optimizers),
      jax.random.key(0), init_batch)
  sharding = parallel.replicated(mesh)
  return jax.tree_util.tree_map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
      shapes)


def abstract_batch(like: Any, global_size: int, mesh: Mesh) -> Any:
  """The global batch of ``global_size`` examples, sharded on ``'data'``,
  that :func:`coopjax.trainer.parallel.put_batch` makes of batches with the
  structure, dtypes and example shapes of ``like`` (any number of
  examples)."""
  sharding = parallel.batch_sharding(mesh)
  return jax.tree_util.tree_map(
      lambda a: jax.ShapeDtypeStruct((global_size,) + a.shape[1:], a.dtype,
                                     sharding=sharding), like)


def start(jitted: Callable, *abstract_args: Any) -> threading.Thread:
  """Starts ``jitted.lower(*abstract_args).compile()`` in a daemon thread.

  ``join()`` the thread before the first call (a call made while it compiles
  would compile a second time). An error in the thread is dropped: the call
  then compiles in the main thread and raises it there.
  """

  def work():
    try:
      jitted.lower(*abstract_args).compile()
    except Exception:  # pylint: disable=broad-except
      pass  # the first call compiles again and reports it

  thread = threading.Thread(target=work, name='coopjax-precompile',
                            daemon=True)
  thread.start()
  return thread
