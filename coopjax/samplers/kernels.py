"""One-transition Langevin kernels: unadjusted (ULA) and Metropolis-adjusted (MALA).

Pure functions in the style of blackjax, to put in your own loop (annealing,
interleaved moves, step-size adaptation)::

    state = init(position, log_prob_fn)
    state, info = mala_step(key, state, log_prob_fn, step_size=0.5)

``position`` is any pytree of arrays. ``log_prob_fn(position)`` returns the
log-density of each chain up to a constant: a scalar for one chain, or an
array of *batch shape* ``[B]`` (any leading shape) for a batch of chains whose
position leaves all start with that batch shape. Chains must not interact: the
gradient of the sum over chains is taken. :class:`LangevinState` carries the
log-density and its gradient at the position, so one transition costs one
gradient evaluation (at the proposal).

Step-size convention: for step size ``s`` and noise scale ``n``, the proposal is

    x' = x + (s^2 / 2) grad log p(x) + s n eps,      eps ~ N(0, I),

so blackjax's ``step_size`` (``x + e grad log p + sqrt(2 e) eps``) is
``e = s^2 / 2`` here, i.e. ``s = sqrt(2 e)``. ``step_size`` and ``noise_scale``
are scalars or per-chain arrays of the batch shape.

Keys: one key (typed :func:`jax.random.key` or legacy
:func:`jax.random.PRNGKey`) for the whole batch, or one key per chain, which
makes each chain's noise independent of the batch it runs in.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from coopjax.samplers import keys as keys_lib

PyTree = Any
LogProbFn = Callable[[PyTree], jax.Array]


class LangevinState(NamedTuple):
  """A chain's (or a batch of chains') state.

  Attributes:
    position: pytree of arrays, each leaf ``[*batch, ...]``.
    log_prob: ``[*batch]`` log-density at ``position``.
    grad: gradient of ``log_prob`` at ``position``, like ``position``.
  """
  position: PyTree
  log_prob: jax.Array
  grad: PyTree


class StepInfo(NamedTuple):
  """Per-chain diagnostics of one transition, each of the batch shape.

  Attributes:
    accepted: whether the proposal was accepted (always True for ULA).
    acceptance_prob: ``min(1, Metropolis-Hastings ratio)`` (1 for ULA; 0
      where the ratio is NaN, e.g. a proposal with a NaN log-density).
    log_prob: log-density of the returned state.
    grad_norm: Euclidean norm of the returned state's gradient (over all
      leaves of the position).
  """
  accepted: jax.Array
  acceptance_prob: jax.Array
  log_prob: jax.Array
  grad_norm: jax.Array


def value_and_grad(log_prob_fn: LogProbFn,
                   position: PyTree) -> Tuple[jax.Array, PyTree]:
  """Each chain's ``log p`` and its gradient (one backward pass for the batch)."""
  (_, lp), g = jax.value_and_grad(
      lambda y: (lambda v: (jnp.sum(v), v))(log_prob_fn(y)),
      has_aux=True)(position)
  return lp, g


def _check_batch(position: PyTree, lp: jax.Array) -> None:
  shapes = [tuple(jnp.shape(l)) for l in jax.tree.leaves(position)]
  nb = lp.ndim
  if not jnp.issubdtype(lp.dtype, jnp.floating):
    raise ValueError(f'log_prob_fn must return floating log-densities; got '
                     f'dtype {lp.dtype}.')
  if not shapes or any(s[:nb] != lp.shape for s in shapes):
    raise ValueError(
        'log_prob_fn must return one log-density per chain: shape [] for one '
        'chain, or the batch shape every position leaf starts with; got '
        f'shape {tuple(lp.shape)} for position leaves of shapes {shapes}.')


def init(position: PyTree, log_prob_fn: LogProbFn) -> LangevinState:
  """The state at ``position``: its log-density and gradient.

  Args:
    position: pytree of arrays (converted with ``jnp.asarray``).
    log_prob_fn: ``log_prob_fn(position) -> [*batch]``.

  Returns:
    :class:`LangevinState`.

  Raises:
    ValueError: if the log-density's shape is not a batch shape all position
      leaves start with.
  """
  position = jax.tree.map(jnp.asarray, position)
  lp, g = value_and_grad(log_prob_fn, position)
  _check_batch(position, lp)
  return LangevinState(position, lp, g)


def _expand(v: Any, leaf: jax.Array) -> jax.Array:
  """A scalar or per-chain ``[*batch]`` value, in ``leaf``'s dtype, broadcastable to it."""
  v = jnp.asarray(v, leaf.dtype)
  return v.reshape(v.shape + (1,) * (leaf.ndim - v.ndim))


def _check_per_chain(name: str, v: Any, batch: Tuple[int, ...]) -> None:
  if jnp.shape(v) not in ((), tuple(batch)):
    raise ValueError(f'{name} must be a scalar or one value per chain (batch '
                     f'shape {tuple(batch)}); got shape {jnp.shape(v)}.')


def chain_sum(tree: PyTree, batch_ndim: int, dtype) -> jax.Array:
  """Per-chain sum over every leaf's non-batch axes, in ``dtype``."""
  sums = [jnp.sum(l, axis=tuple(range(batch_ndim, l.ndim))).astype(dtype)
          for l in jax.tree.leaves(tree)]
  return sum(sums[1:], sums[0])


def grad_norm(state: LangevinState) -> jax.Array:
  """Per-chain Euclidean norm of ``state.grad``, ``[*batch]``."""
  lp = state.log_prob
  return jnp.sqrt(chain_sum(jax.tree.map(jnp.square, state.grad), lp.ndim,
                            lp.dtype))


def _per_chain_draw(keys: jax.Array, batch: Tuple[int, ...], draw):
  """``draw(key, shape)`` for the whole batch from one key, or per chain."""
  if keys.ndim == 0:
    return draw(keys, tuple(batch))
  keys_lib.check_key_batch(keys, batch)
  flat = jax.vmap(lambda k: draw(k, ()))(keys.reshape(-1))
  return flat.reshape(tuple(batch) + flat.shape[1:])


def normal_like(keys: jax.Array, tree: PyTree,
                batch: Tuple[int, ...]) -> PyTree:
  """Standard normal noise like ``tree`` (leaves ``[*batch, ...]``).

  Each chain's noise is one vector over its flattened leaves (in order), so a
  pytree position draws the same numbers as its flattened array.
  """
  leaves, treedef = jax.tree.flatten(tree)
  nb = len(batch)
  sizes = [math.prod(l.shape[nb:]) for l in leaves]
  dtype = jnp.result_type(*leaves)
  flat = _per_chain_draw(
      keys, batch,
      lambda k, shape: jax.random.normal(k, shape + (sum(sizes),), dtype))
  pieces = jnp.split(flat, np.cumsum(sizes)[:-1].tolist(), axis=-1)
  return treedef.unflatten([p.reshape(l.shape).astype(l.dtype)
                            for p, l in zip(pieces, leaves)])


def _drift(grad: PyTree, step_size: Any, clip_drift: Optional[float]) -> PyTree:
  def leaf(g):
    s = _expand(step_size, g)
    d = 0.5 * s * s * g
    return d if clip_drift is None else jnp.clip(d, -clip_drift, clip_drift)
  return jax.tree.map(leaf, grad)


def _move(key: jax.Array, state: LangevinState, drift: PyTree, step_size: Any,
          noise_scale: Any) -> PyTree:
  """``x + drift + s n eps``."""
  batch = state.log_prob.shape
  eps = normal_like(key, state.position, batch)
  return jax.tree.map(
      lambda x, d, e: x + d + _expand(step_size, x) * _expand(noise_scale, x) * e,
      state.position, drift, eps)


def _check_options(state: LangevinState, step_size: Any,
                   noise_scale: Any) -> None:
  _check_per_chain('step_size', step_size, state.log_prob.shape)
  _check_per_chain('noise_scale', noise_scale, state.log_prob.shape)


def ula_position(key: Any, state: LangevinState, *, step_size: Any,
                 noise_scale: Any = 1.0, clip_drift: Optional[float] = None,
                 clip_x: Optional[Tuple[float, float]] = None,
                 clamp: Optional[Tuple[PyTree, PyTree]] = None) -> PyTree:
  """The position one ULA step moves ``state`` to, without its gradient.

  :func:`ula_step` is this followed by :func:`init`;
  :func:`coopjax.samplers.langevin.langevin` scans :func:`init` followed by
  this, so a chain of ``K`` steps evaluates ``K`` gradients. Arguments as in
  :func:`ula_step`.
  """
  key = keys_lib.as_keys(key)
  _check_options(state, step_size, noise_scale)
  x = _move(key, state, _drift(state.grad, step_size, clip_drift), step_size,
            noise_scale)
  if clip_x is not None:
    x = jax.tree.map(lambda v: jnp.clip(v, clip_x[0], clip_x[1]), x)
  if clamp is not None:
    x = jax.tree.map(lambda m, v, p: jnp.where(m, v, p).astype(p.dtype),
                     clamp[0], clamp[1], x)
  return x


def ula_step(key: Any, state: LangevinState, log_prob_fn: LogProbFn, *,
             step_size: Any, noise_scale: Any = 1.0,
             clip_drift: Optional[float] = None,
             clip_x: Optional[Tuple[float, float]] = None,
             clamp: Optional[Tuple[PyTree, PyTree]] = None
             ) -> Tuple[LangevinState, StepInfo]:
  """One unadjusted Langevin step ``x + (s^2/2) grad log p + s n eps``.

  Args:
    key: one key (typed or legacy) or one per chain.
    state: the current :class:`LangevinState`.
    log_prob_fn: as for :func:`init`.
    step_size: ``s``, scalar or per chain.
    noise_scale: ``n``, scalar or per chain; 0 is gradient ascent.
    clip_drift: if set, the drift ``(s^2/2) grad log p`` is clipped to
      ``[-clip_drift, clip_drift]`` per coordinate.
    clip_x: if set, ``(low, high)``: every leaf is clipped to this box.
    clamp: optional ``(mask, values)`` with the position's structure (or
      broadcastable to each leaf): where ``mask`` is true the new position is
      ``values`` (inpainting: only the unknown coordinates move).

  Returns:
    ``(new_state, info)``; ``info.accepted`` is all True.
  """
  new = init(ula_position(key, state, step_size=step_size,
                          noise_scale=noise_scale, clip_drift=clip_drift,
                          clip_x=clip_x, clamp=clamp), log_prob_fn)
  ones = jnp.ones_like(new.log_prob)
  return new, StepInfo(ones.astype(bool), ones, new.log_prob, grad_norm(new))


def _log_q(to: PyTree, frm: PyTree, drift: PyTree, step_size: Any,
           noise_scale: Any, batch_ndim: int, dtype) -> jax.Array:
  """Log-density (up to a constant) of proposing ``to`` from ``frm``."""
  def leaf(t, f, d):
    var = (_expand(step_size, t) * _expand(noise_scale, t)) ** 2
    return (t - f - d) ** 2 / var
  return -0.5 * chain_sum(jax.tree.map(leaf, to, frm, drift), batch_ndim,
                          dtype)


def mala_step(key: Any, state: LangevinState, log_prob_fn: LogProbFn, *,
              step_size: Any, noise_scale: Any = 1.0,
              clip_drift: Optional[float] = None
              ) -> Tuple[LangevinState, StepInfo]:
  """One Metropolis-adjusted Langevin (MALA) step; ``p`` is exactly invariant.

  The Langevin proposal of :func:`ula_step` is accepted with probability
  ``min(1, p(x') q(x | x') / (p(x) q(x' | x)))``, chain by chain. One gradient
  evaluation (at the proposal). With ``noise_scale != 1`` the proposal is
  still valid (its variance is ``(s n)^2``); a clipped drift is a
  deterministic function of ``x``, so ``clip_drift`` keeps it exact too.

  Args:
    key: one key (typed or legacy) or one per chain; split into the noise key
      and the accept key.
    state: the current :class:`LangevinState`.
    log_prob_fn: as for :func:`init`.
    step_size: ``s``, scalar or per chain.
    noise_scale: ``n``, scalar or per chain (must be > 0).
    clip_drift: as for :func:`ula_step`.

  Returns:
    ``(new_state, info)`` with per-chain acceptance.
  """
  key = keys_lib.as_keys(key)
  _check_options(state, step_size, noise_scale)
  lp = state.log_prob
  batch, nb = lp.shape, lp.ndim
  k_noise, k_accept = keys_lib.split_each(key, 2)
  d = _drift(state.grad, step_size, clip_drift)
  prop = init(_move(k_noise, state, d, step_size, noise_scale), log_prob_fn)
  d_back = _drift(prop.grad, step_size, clip_drift)
  log_ratio = (prop.log_prob - lp +
               _log_q(state.position, prop.position, d_back, step_size,
                      noise_scale, nb, lp.dtype) -
               _log_q(prop.position, state.position, d, step_size,
                      noise_scale, nb, lp.dtype))
  u = _per_chain_draw(k_accept, batch,
                      lambda k, shape: jax.random.uniform(k, shape, lp.dtype))
  accepted = jnp.log(u) < log_ratio
  prob = jnp.where(jnp.isnan(log_ratio), 0.0,
                   jnp.exp(jnp.minimum(log_ratio, 0.0))).astype(lp.dtype)

  def pick(new, old):
    return jnp.where(accepted.reshape(batch + (1,) * (new.ndim - nb)), new,
                     old)

  new = jax.tree.map(pick, prop, state)
  return new, StepInfo(accepted, prob, new.log_prob, grad_norm(new))
