"""Data parallelism: one mesh axis ``'data'`` over all devices (and hosts).

The train step is per-device code under :func:`jax.shard_map`: each device
holds a slice of the global batch and the replicated state, computes its
gradients, and ``lax.pmean`` all-reduces them; every device then applies the
same update. The compiled step donates the state.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from coopjax.trainer import nonfinite, state as ts
from coopjax.rng import example_keys

DATA = 'data'
# grads_fn(params, stats, batch, keys, step) -> (grads, new_stats, metrics)
GradsFn = Callable[..., Any]


def make_mesh(devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
  """A 1-D mesh with axis ``'data'`` over ``devices`` (default: all devices)."""
  devices = jax.devices() if devices is None else list(devices)
  return Mesh(np.asarray(devices), (DATA,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA))


def check_batch_size(global_batch: int, mesh: Mesh) -> None:
  """Raises a clear error if the global batch cannot be split over the mesh."""
  n = mesh.devices.size
  if global_batch % n:
    raise ValueError(
        f'config.data.batch_size={global_batch} is not divisible by the '
        f'{n} devices of the mesh; use a multiple of {n}.')


def make_train_step(grads_fn: GradsFn,
                    optimizers: Mapping[str, optax.GradientTransformation],
                    ema_decay: float, mesh: Mesh,
                    metric_limits: Optional[Mapping[str, float]] = None
                    ) -> Callable:
  """Builds the jitted, data-parallel train step.

  Args:
    grads_fn: per-device ``grads_fn(params, stats, batch, keys, step) ->
      (grads, new_stats, metrics)`` (see
      :meth:`coopjax.trainer.protocol.Algorithm.grads_fn`); ``batch`` is the
      local slice of the batch dict (``{'x': ..., ['label': ...]}``),
      ``keys`` the ``[B_local]`` per-example keys, ``step`` the number of
      updates made so far (a traced int32 scalar).
    optimizers: optax transformations per network name.
    ema_decay: EMA decay of the parameters.
    mesh: the mesh; its ``'data'`` axis shards the batch.
    metric_limits: ``{metric: bound}``; a step whose metric exceeds its
      bound in absolute value counts as bad, as a non-finite one
      (:func:`coopjax.trainer.nonfinite.within_limits`).

  Returns:
    ``step(state, batch, key) -> (state, metrics)``. ``batch`` is the global
    batch dict (every array sharded over ``'data'``), ``key`` the run's base key: step ``n``
    uses ``fold_in(key, n)``, and example ``i`` of the global batch
    ``fold_in(fold_in(key, n), i)``, so the result is the same on any number of
    devices. A step whose metrics or new parameters are not finite, or whose
    metrics leave ``metric_limits``, leaves the parameters unchanged and
    reports ``metrics['finite'] = False``.
  """

  def per_device(state: ts.TrainState, x: Any, key: jax.Array,
                 sharded: bool = True):
    local = jax.tree_util.tree_leaves(x)[0].shape[0]
    offset = jax.lax.axis_index(DATA) * local if sharded else 0
    keys = example_keys(jax.random.fold_in(key, state.step), offset, local)
    params = state.params
    if sharded:
      # Under shard_map, the gradient of a device-varying loss w.r.t.
      # replicated parameters is summed over devices implicitly; marking
      # the parameters as varying keeps per-device gradients, which the
      # explicit pmean below averages.
      params = jax.lax.pcast(params, DATA, to='varying')
    grads, stats, metrics = grads_fn(params, state.stats, x, keys, state.step)
    if sharded:
      # One all-reduce of one vector rather than one per array (XLA:CPU
      # does not combine them): on 2 CPU devices the 2-D step took 46
      # rather than 54 ms (bench/RESULTS.md).
      flat, unravel = ravel_pytree((grads, stats, metrics))
      grads, stats, metrics = unravel(jax.lax.pmean(flat, DATA))
    ok = ts.all_finite(metrics)
    if metric_limits:
      ok = ok & nonfinite.within_limits(metrics, metric_limits)
    new, ok = ts.guarded_update(state, grads, stats, optimizers, ema_decay, ok)
    return new, {**metrics, 'finite': ok}

  if mesh.devices.size == 1:
    # One device: the same per-device code without the named axis (no
    # all-reduce to make). XLA:CPU runs shard_map regions markedly slower
    # (measured 1.5-3.6x on the toy step), and there is nothing to shard.
    def train_step(state, x, key):
      return per_device(state, x, key, sharded=False)
  else:
    sharded = jax.shard_map(per_device, mesh=mesh,
                            in_specs=(P(), P(DATA), P()),
                            out_specs=(P(), P()))

    def train_step(state, x, key):
      return sharded(state, x, key)
  return jax.jit(train_step, donate_argnums=0)


def shard_sampler(make_sampler: Callable[[int], Callable], num: int,
                  mesh: Mesh) -> Callable:
  """A sampler of ``num`` samples whose sample axis is split over the mesh.

  Args:
    make_sampler: ``make_sampler(n) -> fn(state, key, start) -> (x, aux)``
      drawing samples ``start .. start + n - 1`` (sample ``i`` a function of
      ``key`` and ``i`` only), e.g. an algorithm's ``sampler``.
    num: samples per call; a multiple of the mesh's device count.
    mesh: the mesh; its ``'data'`` axis splits the samples.

  Returns:
    ``fn(state, key, start) -> (x, aux)`` (not jitted) for the replicated
    ``state``: each device draws only its ``num / n`` samples, and every
    output is sharded over ``'data'`` on its leading (sample) axis. The
    samples equal those of one device drawing all ``num``.

  Raises:
    ValueError: ``num`` is not a multiple of the device count.
  """
  n = mesh.devices.size
  if n == 1:
    return make_sampler(num)
  if num % n:
    raise ValueError(f'{num} samples per call cannot be split over the {n} '
                     f'devices of the mesh; use a multiple of {n} (e.g. '
                     f'config.sample.chunk={-(-num // n) * n}).')
  local = num // n
  per_device = make_sampler(local)

  def run(state, key, start):
    offset = start + jax.lax.axis_index(DATA) * local
    return per_device(state, key, offset)

  return jax.shard_map(run, mesh=mesh, in_specs=(P(), P(), P()),
                       out_specs=P(DATA))


def sample_chunk(num: int, chunk: int, mesh: Mesh) -> int:
  """Samples per sampler call: ``min(num, chunk)`` rounded up to a multiple
  of the device count, so that every device draws an equal share."""
  n = mesh.devices.size
  return -(-min(num, chunk) // n) * n


def to_host(tree: Any) -> Any:
  """A pytree of (possibly sharded, multi-host) arrays as numpy on every
  process."""
  if jax.process_count() > 1:
    return multihost_utils.process_allgather(tree, tiled=True)
  return jax.device_get(tree)


def put_replicated(tree: Any, mesh: Mesh) -> Any:
  """Places a host pytree on every device of ``mesh``."""
  return jax.device_put(tree, replicated(mesh))


def replicated_state(params: Dict[str, Any], stats: Dict[str, Any],
                     optimizers: Mapping[str, optax.GradientTransformation],
                     mesh: Mesh) -> ts.TrainState:
  """A fresh :func:`coopjax.trainer.state.create` state on every device of
  ``mesh``, built by one jitted program.

  Built op by op, the optimisers' ravel and the EMA copy would compile a
  small XLA program for every operation and array shape (the full-size CDRL
  CIFAR-10 state on one CPU device: 2.2 s that way, 0.8 s jitted).
  """
  params, stats = put_replicated((params, stats), mesh)
  create = jax.jit(lambda p, s: ts.create(p, s, optimizers),
                   out_shardings=replicated(mesh))
  return create(params, stats)


def put_batch(local_batch: Any, mesh: Mesh) -> Any:
  """Assembles the global batch (an array or a dict of arrays) from this
  process's slice, sharded on ``'data'``."""
  sharding = batch_sharding(mesh)
  return jax.tree_util.tree_map(
      lambda a: jax.make_array_from_process_local_data(sharding, a),
      local_batch)


def host_metrics(metrics: Dict[str, jax.Array]) -> Dict[str, float]:
  """Fetches scalar metrics to the host as Python floats."""
  return {k: float(v) for k, v in jax.device_get(metrics).items()}
