"""What every bench script shares: configs, data, a fresh state and timers.

The scripts import it as ``common`` (``bench/`` is on ``sys.path`` when one
of them runs as a script). Every figure is measured after one compile call.
"""

import collections
import importlib.util
import time
from typing import Callable, List, Tuple

import jax

from coopjax import data, registry
from coopjax.trainer import parallel


def load_config(spec: str):
  """The config of ``path[:variant]``, as ``--config`` would load it."""
  path, _, variant = spec.partition(':')
  module_spec = importlib.util.spec_from_file_location('bench_config', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(variant) if variant else module.get_config()


# Calls in flight at most while timing. XLA:CPU deadlocks in the
# all-reduce of programs queued far ahead on several (fake) CPU devices:
# a 2-device pmean loop hung with 32 calls queued, never with 8
# (bench/RESULTS.md); the trainer keeps at most two steps in flight.
MAX_IN_FLIGHT = 4


def timed(fn: Callable[[], object], n: int) -> float:
  """Seconds per call of ``fn`` over ``n`` calls, after one warm-up call,
  with at most :data:`MAX_IN_FLIGHT` calls queued."""
  jax.block_until_ready(fn())
  start = time.perf_counter()
  queued = collections.deque()
  for _ in range(n):
    queued.append(fn())
    if len(queued) > MAX_IN_FLIGHT:
      jax.block_until_ready(queued.popleft())
  jax.block_until_ready(list(queued))
  return (time.perf_counter() - start) / n


def compile_and_time(fn: Callable[[int], object],
                     repeats: int) -> Tuple[float, List[float]]:
  """``(first call's seconds, [seconds of each later call])``; ``fn(i)``."""
  start = time.perf_counter()
  jax.block_until_ready(fn(0))
  compile_s = time.perf_counter() - start
  times = []
  for i in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(i + 1))
    times.append(time.perf_counter() - start)
  return compile_s, times


def dataset_for(config, num: int, prefer_random: bool = False):
  """The config's data, or random images of its shape where the data is not
  prepared here (tfds offline) or ``prefer_random`` (cost does not depend on
  the pixels)."""
  if not prefer_random:
    try:
      return data.load(config.data, config.seed)
    except FileNotFoundError:
      pass
  size = config.data.image_size
  return data.images.random_images(
      (size, size, config.data.get('channels', 3)), max(num, 2),
      config.model.get('num_classes', 0), name=config.data.name)


def fresh_state(config, dataset, mesh=None, init_examples: int = 2):
  """``(algorithm, mesh, replicated state)`` with freshly initialised nets."""
  algo = registry.build(config, dataset)
  mesh = mesh if mesh is not None else parallel.make_mesh()
  params, stats = jax.jit(algo.init_variables)(
      jax.random.key(0), dataset.batch(0, init_examples, 0))
  state = parallel.replicated_state(params, stats, algo.optimizers, mesh)
  return algo, mesh, state


def sampler_for(algo, mesh, num: int):
  """The algorithm's jitted sampler of ``num`` samples split over ``mesh``."""
  return jax.jit(parallel.shard_sampler(algo.sampler, num, mesh))


class Stepper:
  """Calls the data-parallel train step on one fixed batch, keeping the state.

  ``stepper()`` runs one step and returns its metrics; ``stepper.state`` is
  the latest state.
  """

  def __init__(self, config, algo, mesh, state, host_batch):
    self.state = state
    self.batch = parallel.put_batch(host_batch, mesh)
    self._step = parallel.make_train_step(algo.grads_fn, algo.optimizers,
                                          config.train.ema, mesh)
    self._key = jax.random.key(0)

  def __call__(self):
    self.state, metrics = self._step(self.state, self.batch, self._key)
    return metrics

  def lower(self):
    """The step lowered for the present state and batch; its ``compile()``
    is cached, so the next call runs it without compiling again."""
    return self._step.lower(self.state, self.batch, self._key)
