"""Train state shared by all algorithms: named networks, optimisers, EMA.

Every algorithm trains a few named networks (CDRL: ``'ebm'`` and ``'init'``;
CoopFlow: ``'ebm'`` and ``'flow'``; ...). :class:`TrainState` holds, per name,
the parameters, mutable statistics, the optax state and an EMA copy, as plain
pytrees; :func:`guarded_update` (:func:`apply_gradients` without its
finiteness guard) is the one pure update they all share.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence, Tuple

import flax.struct
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
import optax

from coopjax.config import common as config_common

Tree = Any


@flax.struct.dataclass
class TrainState:
  """Everything needed to continue training exactly.

  Attributes:
    step: number of completed updates (int32 scalar).
    params: ``{name: params}``.
    stats: ``{name: non-trained variables}`` (e.g. spectral-norm vectors).
    opt_state: ``{name: optax state}``.
    ema: ``{name: EMA of params}``.
  """
  step: jax.Array
  params: Dict[str, Tree]
  stats: Dict[str, Tree]
  opt_state: Dict[str, Tree]
  ema: Dict[str, Tree]


def create(params: Dict[str, Tree], stats: Dict[str, Tree],
           optimizers: Mapping[str, optax.GradientTransformation]) -> TrainState:
  """A fresh state: step 0, EMA equal to the parameters."""
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      params=params,
      stats=stats,
      opt_state={k: optimizers[k].init(v) for k, v in params.items()},
      ema=jax.tree_util.tree_map(jnp.copy, params))


def ema_decay(decay: float, num_updates: jax.Array) -> jax.Array:
  """Warm-started EMA decay ``min(decay, (1 + n) / (10 + n))``.

  The same rule as the ``torch_ema`` package the reference code uses, so that
  early EMA weights are not dominated by the random initialisation.
  """
  n = jnp.asarray(num_updates, jnp.float32)
  return jnp.minimum(decay, (1.0 + n) / (10.0 + n))


class FlatTransformation(optax.GradientTransformationExtraArgs):
  """An optax transformation of one network's parameters raveled into one
  vector (:func:`optax.flatten`'s): :func:`guarded_update` hands it the
  raveled gradients and parameters directly, without a tree around them."""
  __slots__ = ()


def apply_gradients(state: TrainState, grads: Dict[str, Tree],
                    new_stats: Dict[str, Tree],
                    optimizers: Mapping[str, optax.GradientTransformation],
                    decay: float) -> TrainState:
  """One optimiser update of every network in ``grads`` and their EMAs.

  Networks absent from ``grads`` are left unchanged (e.g. a frozen flow).
  :func:`guarded_update` without its guard.
  """
  return guarded_update(state, grads, new_stats, optimizers, decay,
                        guard=False)[0]


def guarded_update(state: TrainState, grads: Dict[str, Tree],
                   new_stats: Dict[str, Tree],
                   optimizers: Mapping[str, optax.GradientTransformation],
                   decay: float, ok: Any = True, guard: bool = True
                   ) -> Tuple[TrainState, jax.Array]:
  """:func:`apply_gradients`, kept only if it is finite.

  Each network's parameters, EMA and gradients are raveled into one vector
  (a :class:`FlatTransformation` optimiser takes them as they are), so the
  update, the EMA, the finiteness check and the keep-or-revert select are
  a few operations per network rather than several per parameter array (a
  fifth fewer StableHLO lines in the CIFAR-10 CDRL step; XLA:CPU's compile
  time is unchanged, as it still writes one output per array:
  ``bench/RESULTS.md``).

  Args:
    state, grads, new_stats, optimizers, decay: as :func:`apply_gradients`.
    ok: a bool scalar that must also hold (e.g. the metrics are finite).
    guard: False skips the check: the update is kept as it is.

  Returns:
    ``(new_state, ok)``: when ``ok`` is False (``ok`` or any new parameter
    not finite) ``new_state`` is ``state`` with only ``step`` advanced.
  """
  d = ema_decay(decay, state.step + 1)
  ok = jnp.asarray(ok, bool)
  updated = {}
  for name, g in grads.items():
    opt = optimizers[name]
    p, unravel = ravel_pytree(state.params[name])
    if isinstance(opt, FlatTransformation):
      u, opt_state = opt.update(ravel_pytree(g)[0], state.opt_state[name], p,
                                params_tree=state.params[name])
    else:
      u, opt_state = opt.update(g, state.opt_state[name], state.params[name])
      u = ravel_pytree(u)[0]
    new_p = (p + u).astype(p.dtype)
    e = ravel_pytree(state.ema[name])[0]
    updated[name] = (unravel, p, new_p, e, d * e + (1.0 - d) * new_p,
                     opt_state)
    if guard:
      ok = ok & jnp.all(jnp.isfinite(new_p))
  keep = (lambda new, old: jnp.where(ok, new, old)) if guard else (
      lambda new, old: new)
  params, opt_states, ema = dict(state.params), dict(state.opt_state), dict(
      state.ema)
  for name, (unravel, p, new_p, e, new_e, opt_state) in updated.items():
    params[name] = unravel(keep(new_p, p))
    ema[name] = unravel(keep(new_e, e))
    opt_states[name] = jax.tree_util.tree_map(keep, opt_state,
                                              state.opt_state[name])
  stats = dict(state.stats)
  for name, new in new_stats.items():
    stats[name] = (jax.tree_util.tree_map(keep, new, state.stats[name])
                   if name in state.stats else new)
  return state.replace(step=state.step + 1, params=params, stats=stats,
                       opt_state=opt_states, ema=ema), ok


def all_finite(tree: Tree) -> jax.Array:
  """True iff every leaf of ``tree`` is finite."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def make_optimizer(cfg) -> optax.GradientTransformation:
  """Adam(W) with linear warm-up and global-norm clipping, from a ConfigDict.

  The transformation works on the network's parameters raveled into one
  vector (``optax.flatten``); its state holds flat moment vectors.

  Fields: ``lr``, ``b1``, ``b2``, ``weight_decay`` (0 gives Adam),
  ``warmup`` (steps; 0 disables), ``warmup_offset`` (the warm-up factor is
  ``min(1, (step + offset) / warmup)``), ``grad_clip`` (0 disables),
  ``freeze_steps`` (optional: the first ``freeze_steps`` updates are
  skipped, the parameters, Adam's moments and its step count unchanged
  (:func:`skip_first_updates`); the learning-rate schedule counts them, so a
  warm-up is not restarted after the freeze), ``l2`` and ``l2_names``
  (optional: PyTorch Adam's coupled weight decay, ``l2 * p`` added to the
  clipped gradients of the parameters whose leaf name is in ``l2_names``),
  ``lr_after_step`` and ``lr_after`` (optional: from update ``lr_after_step``
  on, counted from the start like ``freeze_steps``, ``lr_after`` replaces
  ``lr``; 0 keeps ``lr``), ``freeze_from`` (optional: from update
  ``freeze_from`` on, counted the same way, the learning rate is 0, so the
  parameters stay as they are; 0: never). Fields left out of ``cfg`` (a ConfigDict or dict)
  take their defaults from :func:`coopjax.config.common.optimizer`.
  ``decay_rate`` and ``decay_steps`` (optional): a staircase exponential
  decay, the learning rate times ``decay_rate ** floor(step / decay_steps)``
  (PyTorch's ``ExponentialLR`` stepped once per epoch of ``decay_steps``
  updates).
  """
  cfg = config_common.optimizer(**dict(cfg.items()))
  warmup, offset = cfg.warmup, cfg.warmup_offset
  freeze = cfg.freeze_steps
  if freeze < 0:
    raise ValueError(f'freeze_steps must be >= 0, got {freeze}.')

  after_step, lr_after = cfg.lr_after_step, cfg.lr_after
  if after_step < 0 or lr_after < 0:
    raise ValueError(f'lr_after_step and lr_after must be >= 0, got '
                     f'{after_step} and {lr_after}.')

  freeze_from = cfg.freeze_from
  if freeze_from < 0:
    raise ValueError(f'freeze_from must be >= 0, got {freeze_from}.')

  decay_rate, decay_steps = cfg.decay_rate, cfg.decay_steps
  if decay_steps < 0 or decay_rate <= 0:
    raise ValueError(f'decay_steps must be >= 0 and decay_rate > 0, got '
                     f'{decay_steps} and {decay_rate}.')

  def decay(step):
    if not decay_steps or decay_rate == 1.0:
      return 1.0
    return decay_rate ** jnp.floor(step / decay_steps)

  def base(step):
    if not (after_step and lr_after):
      return cfg.lr * decay(step)
    return jnp.where(step < after_step, cfg.lr, lr_after) * decay(step)

  def warm(step):
    if warmup <= 0:
      return 1.0
    return jnp.minimum(1.0, (step + offset) / warmup)

  def schedule(step):
    # the step counts every update, frozen ones too: the warm-up is not
    # restarted after a freeze (the authors' CoopFlow(pre))
    lr = base(step) * warm(step)
    if freeze_from:
      lr = jnp.where(step < freeze_from, lr, 0.0)
    return lr

  if not freeze:  # the layout of checkpoints written before freeze/l2
    if cfg.weight_decay:
      opt = optax.adamw(schedule, cfg.b1, cfg.b2,
                        weight_decay=cfg.weight_decay)
    else:
      opt = optax.adam(schedule, cfg.b1, cfg.b2)
    if cfg.grad_clip and not cfg.l2:
      opt = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), opt)
  else:
    inner = [optax.scale_by_adam(cfg.b1, cfg.b2)]
    if cfg.weight_decay:
      inner.append(optax.add_decayed_weights(cfg.weight_decay))
    if cfg.grad_clip and not cfg.l2:
      inner.insert(0, optax.clip_by_global_norm(cfg.grad_clip))
    opt = optax.chain(skip_first_updates(freeze, optax.chain(*inner)),
                      optax.scale_by_learning_rate(schedule))
  # One flat vector per network for the clipping and Adam: the same
  # elementwise update, but a few operations instead of ~20 per parameter
  # array (the CIFAR-10 CDRL networks have 595 arrays: the update's
  # StableHLO fell from 30,457 to 6,035 lines, bench/RESULTS.md).
  if not cfg.l2:
    return FlatTransformation(*optax.flatten(opt))
  return _flat_with_l2(opt, cfg.l2, tuple(cfg.l2_names), cfg.grad_clip)


def _flat_with_l2(inner: optax.GradientTransformation, l2: float,
                  names: Sequence[str], clip: float) -> FlatTransformation:
  """PyTorch Adam's ``weight_decay`` before ``inner``, on one flat vector.

  ``l2 * p`` is added to the (clipped) gradients of the parameters whose
  leaf name is in ``names`` (the authors' Flow++: the weight-norm scales
  only), then ``inner`` (Adam and the schedule) runs on the raveled vector.
  The state is that of ``optax.chain([clip_by_global_norm,]
  masked(add_decayed_weights), flatten(inner))``, the layout of checkpoints
  written before this was flat; its update is a few operations on the
  raveled vector instead of several per parameter array (the clip's norm,
  the mask, the add).

  :func:`guarded_update` passes raveled gradients and parameters with the
  parameter tree as ``params_tree`` (whose leaf names pick the decayed
  entries) and gets a raveled update back; called with trees (as any optax
  transformation), it returns a tree.
  """
  mask = lambda params: jax.tree_util.tree_map_with_path(
      lambda path, _: bool(names) and _leaf_name(path) in names, params)
  parts = [optax.masked(optax.add_decayed_weights(l2), mask),
           optax.flatten(inner)]
  if clip:
    parts.insert(0, optax.clip_by_global_norm(clip))
  inner = optax.with_extra_args_support(inner)

  def init(params):
    return tuple(part.init(params) for part in parts)

  def update(updates, state, params=None, params_tree=None, **extra):
    if params is None:
      raise ValueError('The L2 term needs the parameters.')
    tree = params_tree is None
    unravel = None
    if tree:
      params_tree = params
      updates, unravel = ravel_pytree(updates)
      params = ravel_pytree(params)[0]
    decayed = ravel_pytree(jax.tree_util.tree_map(
        lambda p, m: p if m else jnp.zeros_like(p), params_tree,
        mask(params_tree)))[0]
    if clip:  # optax's clip_by_global_norm on the one vector
      updates = parts[0].update(updates, state[0])[0]
    updates = updates + l2 * decayed.astype(updates.dtype)
    new, inner_state = inner.update(updates, state[-1], params, **extra)
    new_state = state[:-1] + (inner_state,)
    return (unravel(new) if tree else new), new_state

  return FlatTransformation(init, update)


def _leaf_name(path) -> str:
  last = path[-1]
  return str(getattr(last, 'key', getattr(last, 'name', last)))


def skip_first_updates(n: int, inner: optax.GradientTransformation
                       ) -> optax.GradientTransformation:
  """``inner`` with its first ``n`` updates skipped: they are zero and leave
  ``inner``'s state (Adam's moments and count) as it was, as if the optimiser
  had not stepped (the authors' CoopFlow(pre) freeze)."""

  def init(params):
    return (jnp.zeros((), jnp.int32), inner.init(params))

  def update(updates, state, params=None):
    count, inner_state = state
    new_updates, new_inner = inner.update(updates, inner_state, params)
    frozen = count < n
    pick = lambda a, b: jax.tree_util.tree_map(
        lambda u, v: jnp.where(frozen, u, v), a, b)
    new_updates = jax.tree_util.tree_map(
        lambda u: jnp.where(frozen, jnp.zeros_like(u), u), new_updates)
    return new_updates, (jnp.minimum(count + 1, n),
                         pick(inner_state, new_inner))

  return optax.GradientTransformation(init, update)
