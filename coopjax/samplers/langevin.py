"""A reusable, jit-compiled Langevin chain for any per-example log-density.

The chain is a :func:`jax.lax.scan` of the one-step kernels of
:mod:`coopjax.samplers.kernels` over a batch of chains, with the per-step keys
split up front. One step, for step size ``s`` and ``noise_scale`` ``n``::

    x <- x + (s^2 / 2) * grad_x log p(x) + s * n * eps,      eps ~ N(0, I)

``n = 0`` gives plain gradient ascent on ``log p``. Optional extras: clipping of
the drift ``(s^2 / 2) grad log p`` per coordinate, clipping of ``x`` to a box,
clamping coordinates (inpainting) and a Metropolis-adjusted variant (MALA)
that keeps the target exactly invariant. (blackjax's step size is ``s^2 / 2``.)

Example, from any JAX code::

    import jax, jax.numpy as jnp
    from coopjax.samplers.langevin import langevin

    def log_prob(x, mean):                      # per-example log-density, [B]
        return -0.5 * jnp.sum((x - mean) ** 2, axis=-1)

    x0 = jnp.zeros((1000, 2))
    x, info = langevin(log_prob, x0, jax.random.key(0), n_steps=500,
                       step_size=0.5, args=(jnp.array([1.0, -2.0]),))
    # x ~ N(mean, I); info.log_prob[k] is the mean log-density before step k,
    # info.chain_log_prob[k] each chain's.

The compiled chain is cached on the *code* of ``log_prob`` and the static
options: arrays the log-density depends on may be passed through ``args`` or
closed over (``lambda x: log_prob(x, mean)`` built anew per call reuses the
compiled chain; see :mod:`coopjax.samplers.closures`).
"""

from __future__ import annotations

import functools
import operator
from typing import Any, Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from coopjax.samplers import closures
from coopjax.samplers import kernels
from coopjax.samplers import keys as keys_lib

LogProbFn = Callable[..., jax.Array]


class LangevinInfo(NamedTuple):
  """Per-step diagnostics of a chain.

  ``log_prob``, ``grad_norm`` and ``accept_rate`` are batch means, ``[n_steps]``;
  the ``chain_*`` fields are per chain, ``[n_steps, *batch]``. Log-densities
  and gradient norms are those of the state step ``k`` starts from.

  Attributes:
    log_prob: mean over chains of ``log p(x)`` at the start of each step.
    grad_norm: mean over chains of ``||grad_x log p||`` at the start of each step.
    accept_rate: fraction of accepted proposals per step (1.0 without MALA).
    chain_log_prob: each chain's ``log p(x)`` at the start of each step.
    chain_grad_norm: each chain's ``||grad_x log p||`` at the start of each step.
    accepted: whether each chain's proposal was accepted at each step.
    acceptance_prob: each chain's MALA acceptance probability (1 without MALA).
  """
  log_prob: jax.Array
  grad_norm: jax.Array
  accept_rate: jax.Array
  chain_log_prob: jax.Array
  chain_grad_norm: jax.Array
  accepted: jax.Array
  acceptance_prob: jax.Array


def split_keys(key: Any, n_steps: int) -> jax.Array:
  """Splits a key (or an array of per-chain keys) into per-step keys.

  Returns:
    typed keys, ``[n_steps, 2]`` for a single key, ``[n_steps, 2, *batch]``
    for per-chain keys. The chain uses index 0 as each step's key (the noise;
    MALA splits it again into noise and accept keys).
  """
  key = keys_lib.as_keys(key)
  if key.ndim == 0:
    return jax.random.split(key, (n_steps, 2))
  per_chain = jax.vmap(lambda k: jax.random.split(k, (n_steps, 2)))(
      key.reshape(-1))
  return jnp.moveaxis(per_chain, 0, -1).reshape((n_steps, 2) + key.shape)


def _record(state: kernels.LangevinState, accepted: jax.Array,
            prob: jax.Array) -> Tuple[jax.Array, ...]:
  return state.log_prob, kernels.grad_norm(state), accepted, prob


def _info(per_chain: Tuple[jax.Array, ...]) -> LangevinInfo:
  """Batch means and the per-chain ``[n_steps, *batch]`` records."""
  lps, gns, accepted, probs = per_chain
  axes = tuple(range(1, lps.ndim))
  return LangevinInfo(jnp.mean(lps, axis=axes), jnp.mean(gns, axis=axes),
                      jnp.mean(accepted.astype(lps.dtype), axis=axes),
                      lps, gns, accepted, probs)


@functools.partial(
    jax.jit, static_argnames=('n_steps', 'mala', 'clip_drift', 'clip_x'))
def _chain(log_prob, x0, key, step_size, noise_scale, clamp, args, *,
           n_steps, mala, clip_drift, clip_x):
  """The jitted chain; ``log_prob`` is a :class:`closures.PytreeCallable`."""

  def fn(x):
    return log_prob(x, *args)

  if n_steps == 0:
    lp = jax.eval_shape(fn, x0)
    empty = jnp.zeros((0,) + lp.shape, lp.dtype)
    return x0, _info((empty, empty, empty.astype(bool), empty))
  opts = dict(step_size=step_size, noise_scale=noise_scale,
              clip_drift=clip_drift)
  if mala:
    state = kernels.init(x0, fn)
    keys_lib.check_key_batch(key, state.log_prob.shape)

    def mala_body(st, k):
      new, info = kernels.mala_step(k, st, fn, **opts)
      return new, _record(st, info.accepted, info.acceptance_prob)

    state, per_chain = jax.lax.scan(mala_body, state,
                                    split_keys(key, n_steps)[:, 0])
    return state.position, _info(per_chain)

  # ULA: ula_step is init after ula_position; scanning them the other way
  # round (init, then ula_position) traces log_prob's gradient once and
  # evaluates it n_steps times, with no gradient at the final position.
  def ula_body(x, k):
    st = kernels.init(x, fn)
    keys_lib.check_key_batch(key, st.log_prob.shape)
    ones = jnp.ones_like(st.log_prob)
    return (kernels.ula_position(k, st, clip_x=clip_x, clamp=clamp, **opts),
            _record(st, ones.astype(bool), ones))

  x, per_chain = jax.lax.scan(ula_body, x0, split_keys(key, n_steps)[:, 0])
  return x, _info(per_chain)


def langevin(log_prob: LogProbFn,
             x0: Any,
             key: Any,
             *,
             n_steps: int,
             step_size: Any,
             noise_scale: Any = 1.0,
             clip_drift: Optional[float] = None,
             clip_x: Optional[Tuple[float, float]] = None,
             mala: bool = False,
             clamp: Optional[Tuple[Any, Any]] = None,
             args: Tuple[Any, ...] = ()) -> Tuple[Any, LangevinInfo]:
  """Runs ``n_steps`` of (optionally Metropolis-adjusted) Langevin dynamics.

  Args:
    log_prob: function ``log_prob(x, *args) -> [B]`` giving each example's
      (chain's) log-density up to a constant. Examples must not interact (the
      gradient of the sum is taken). A new closure of the same code does not
      recompile (arrays it closes over are traced, other values are static).
    x0: initial state: an array ``[B, ...]`` or any pytree of arrays whose
      leaves all start with the batch shape ``[B]`` (a scalar ``log_prob``
      runs one chain).
    key: a PRNG key (typed, ``jax.random.key``, or legacy uint32,
      ``jax.random.PRNGKey``), or a ``[B]`` batch of either (per-example keys,
      e.g. ``jax.random.split(key, B)``). Per-example keys make a chain's noise
      independent of how the batch is sharded.
    n_steps: number of steps (static).
    step_size: ``s``, a scalar or a per-example ``[B]`` array.
    noise_scale: multiplies the injected noise; 0 gives gradient ascent.
      Scalar or ``[B]``.
    clip_drift: if set, the drift ``(s^2/2) grad log p`` is clipped to
      ``[-clip_drift, clip_drift]`` per coordinate.
    clip_x: if set, a ``(low, high)`` box the state is clipped to after each step.
    mala: accept or reject each proposal with the Metropolis-Hastings ratio of
      the Langevin proposal, so that ``p`` is exactly invariant. Incompatible
      with ``clip_x`` (a clipped proposal has no tractable density).
    clamp: optional ``(mask, values)`` broadcastable to ``x0`` (pytrees of
      its structure for a pytree ``x0``): after every step, coordinates where
      ``mask`` is true are reset to ``values`` (inpainting: the chain moves
      only the unknown coordinates). Not with ``mala``.
    args: extra arguments passed to ``log_prob`` (parameters, conditioning).

  Returns:
    ``(x, info)``: the final state (same structure, shapes and dtypes as
    ``x0``) and a :class:`LangevinInfo` of per-step diagnostics.

  Raises:
    ValueError: for ``mala`` together with ``clip_x`` or ``clamp``,
      ``n_steps < 0``, or keys / step sizes that are neither one nor one per
      example.
    TypeError: for a ``key`` that is not a PRNG key.
  """
  try:
    steps = operator.index(n_steps)
  except TypeError:
    steps = -1
  if steps < 0:
    raise ValueError(f'n_steps must be an int >= 0, got {n_steps!r}.')
  n_steps = steps
  if mala and clip_x is not None:
    raise ValueError('mala=True cannot be combined with clip_x: the clipped '
                     'proposal density is not tractable. Drop one of them.')
  if mala and clamp is not None:
    raise ValueError('mala=True cannot be combined with clamp.')
  key = keys_lib.as_keys(key)
  x0 = jax.tree.map(jnp.asarray, x0)
  clip_x = None if clip_x is None else (float(clip_x[0]), float(clip_x[1]))
  x, info = _chain(closures.as_pytree(log_prob), x0, key, step_size,
                   noise_scale, clamp, tuple(args), n_steps=n_steps,
                   mala=bool(mala), clip_drift=clip_drift, clip_x=clip_x)
  return jax.tree.map(lambda a, b: a.astype(b.dtype), x, x0), info
