"""A reusable, jit-compiled Langevin sampler for any per-example log-density.

The chain is one :func:`jax.lax.scan` over steps with the per-step keys split
up front. One step, for step size ``s`` and ``noise_scale`` ``n``::

    x <- x + (s^2 / 2) * grad_x log p(x) + s * n * eps,      eps ~ N(0, I)

``n = 0`` gives plain gradient ascent on ``log p``. Optional extras: clipping of
the drift ``(s^2 / 2) grad log p`` per coordinate, clipping of ``x`` to a box,
and a Metropolis-adjusted variant (MALA) that keeps the target exactly
invariant.

Example, from any JAX code::

    import jax, jax.numpy as jnp
    from coopjax.samplers import langevin

    def log_prob(x, mean):                      # per-example log-density, [B]
        return -0.5 * jnp.sum((x - mean) ** 2, axis=-1)

    x0 = jnp.zeros((1000, 2))
    x, info = langevin(log_prob, x0, jax.random.key(0), n_steps=500,
                       step_size=0.5, args=(jnp.array([1.0, -2.0]),))
    # x ~ N(mean, I); info.log_prob[k] is the mean log-density after step k.

Pass arrays the log-density depends on (network parameters, conditioning)
through ``args`` instead of closing over them: the compiled chain is cached on
the identity of ``log_prob`` and the static options, so a new closure per call
recompiles while new ``args`` of the same shapes do not.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

LogProbFn = Callable[..., jax.Array]


class LangevinInfo(NamedTuple):
  """Per-step diagnostics of a chain, each of shape ``[n_steps]``.

  Attributes:
    log_prob: mean over examples of ``log p(x)`` at the start of each step.
    grad_norm: mean over examples of ``||grad_x log p||`` at the start of each step.
    accept_rate: fraction of accepted proposals per step (1.0 without MALA).
  """
  log_prob: jax.Array
  grad_norm: jax.Array
  accept_rate: jax.Array


def _expand(v: jax.Array, x: jax.Array) -> jax.Array:
  """Broadcasts a scalar or per-example ``[B]`` value against ``x`` ``[B, ...]``."""
  v = jnp.asarray(v, x.dtype)
  return v.reshape(v.shape + (1,) * (x.ndim - v.ndim))


def _normal(keys: jax.Array, x: jax.Array) -> jax.Array:
  """Standard normal noise like ``x`` from one key or one key per example."""
  if keys.ndim == 0:
    return jax.random.normal(keys, x.shape, x.dtype)
  return jax.vmap(lambda k: jax.random.normal(k, x.shape[1:], x.dtype))(keys)


def _uniform(keys: jax.Array, batch: int, dtype) -> jax.Array:
  """``[B]`` uniforms from one key or one key per example."""
  if keys.ndim == 0:
    return jax.random.uniform(keys, (batch,), dtype)
  return jax.vmap(lambda k: jax.random.uniform(k, (), dtype))(keys)


def split_keys(key: jax.Array, n_steps: int) -> jax.Array:
  """Splits a key (or a ``[B]`` array of per-example keys) into per-step keys.

  Returns:
    ``[n_steps, 2]`` keys for a single key, ``[n_steps, 2, B]`` for per-example
    keys (index 0: Gaussian noise, index 1: the MALA accept draw).
  """
  if key.ndim == 0:
    return jax.random.split(key, (n_steps, 2))
  per_example = jax.vmap(lambda k: jax.random.split(k, (n_steps, 2)))(key)
  return jnp.moveaxis(per_example, 0, -1)


@functools.partial(
    jax.jit,
    static_argnames=('log_prob', 'n_steps', 'mala', 'clip_drift', 'clip_x'))
def langevin(log_prob: LogProbFn,
             x0: jax.Array,
             key: jax.Array,
             *,
             n_steps: int,
             step_size: Any,
             noise_scale: Any = 1.0,
             clip_drift: Optional[float] = None,
             clip_x: Optional[Tuple[float, float]] = None,
             mala: bool = False,
             clamp: Optional[Tuple[jax.Array, jax.Array]] = None,
             args: Tuple[Any, ...] = ()) -> Tuple[jax.Array, LangevinInfo]:
  """Runs ``n_steps`` of (optionally Metropolis-adjusted) Langevin dynamics.

  Args:
    log_prob: pure function ``log_prob(x, *args) -> [B]`` giving each example's
      log-density up to a constant. Examples must not interact (the gradient
      of the sum is taken).
    x0: initial state ``[B, ...]``.
    key: a PRNG key, or a ``[B]`` array of per-example keys. Per-example keys
      make the chain's noise independent of how the batch is sharded.
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
    clamp: optional ``(mask, values)`` broadcastable to ``x0``: after every
      step, coordinates where ``mask`` is true are reset to ``values``
      (inpainting: the chain moves only the unknown coordinates). Not with
      ``mala``.
    args: extra arguments passed to ``log_prob`` (parameters, conditioning).

  Returns:
    ``(x, info)``: the final state (same shape and dtype as ``x0``) and a
    :class:`LangevinInfo` of per-step diagnostics.

  Raises:
    ValueError: for ``mala`` together with ``clip_x`` or ``clamp``, or
      ``n_steps < 0``.
  """
  if n_steps < 0:
    raise ValueError(f'n_steps must be >= 0, got {n_steps}.')
  if mala and clip_x is not None:
    raise ValueError('mala=True cannot be combined with clip_x: the clipped '
                     'proposal density is not tractable. Drop one of them.')
  if mala and clamp is not None:
    raise ValueError('mala=True cannot be combined with clamp.')
  x0 = jnp.asarray(x0)
  batch = x0.shape[0]
  s = _expand(step_size, x0)
  noise = _expand(noise_scale, x0)

  def value_and_grad(x):
    (_, lp), g = jax.value_and_grad(
        lambda y: (lambda v: (jnp.sum(v), v))(log_prob(y, *args)),
        has_aux=True)(x)
    return lp, g

  def drift(g):
    d = 0.5 * s * s * g
    return d if clip_drift is None else jnp.clip(d, -clip_drift, clip_drift)

  def log_q(to, frm, d_frm):
    # Log-density (up to a constant) of proposing `to` from `frm`.
    var = (s * noise) ** 2
    sq = (to - frm - d_frm) ** 2 / var
    return -0.5 * jnp.sum(sq.reshape(batch, -1), axis=-1)

  def grad_norm(g):
    return jnp.mean(jnp.sqrt(jnp.sum(g.reshape(batch, -1) ** 2, axis=-1)))

  def propose(x, d, k):
    prop = x + d + s * noise * _normal(k, x)
    if clip_x is not None:
      prop = jnp.clip(prop, clip_x[0], clip_x[1])
    if clamp is not None:
      prop = jnp.where(clamp[0], clamp[1], prop)
    return prop

  def plain_step(x, keys):
    lp, g = value_and_grad(x)
    x_new = propose(x, drift(g), keys[0])
    return x_new, (jnp.mean(lp), grad_norm(g), jnp.ones((), lp.dtype))

  def mala_step(carry, keys):
    x, lp, g = carry
    d = drift(g)
    prop = propose(x, d, keys[0])
    lp_prop, g_prop = value_and_grad(prop)
    log_ratio = (lp_prop - lp + log_q(x, prop, drift(g_prop)) -
                 log_q(prop, x, d))
    accept = jnp.log(_uniform(keys[1], batch, lp.dtype)) < log_ratio
    acc = _expand(accept, x)
    new = (jnp.where(acc, prop, x), jnp.where(accept, lp_prop, lp),
           jnp.where(acc, g_prop, g))
    return new, (jnp.mean(lp), grad_norm(g),
                 jnp.mean(accept.astype(lp.dtype)))

  keys = split_keys(key, n_steps)
  if mala:
    (x, _, _), (lps, gns, rates) = jax.lax.scan(
        mala_step, (x0, *value_and_grad(x0)), keys, length=n_steps)
  else:
    x, (lps, gns, rates) = jax.lax.scan(plain_step, x0, keys, length=n_steps)
  return x.astype(x0.dtype), LangevinInfo(lps, gns, rates)
