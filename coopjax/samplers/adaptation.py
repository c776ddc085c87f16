"""Step-size adaptation by dual averaging towards a target acceptance rate.

Nesterov's primal-dual averaging as Hoffman & Gelman (2014, NUTS paper,
section 3.2.1) use it for the step size: with ``H_t = target - alpha_t`` the
gap between the target and the acceptance probability of step ``t``,

    Hbar_t = (1 - 1/(t + t0)) Hbar_{t-1} + H_t / (t + t0)
    log s_t = mu - sqrt(t) / gamma * Hbar_t
    log sbar_t = t^-kappa log s_t + (1 - t^-kappa) log sbar_{t-1}

with ``mu = log(10 s_0)``. ``s_t`` is the step size to use next while
adapting; ``sbar_t`` (:func:`dual_averaging_step_size`) the one to keep after.
Everything is a pure function of arrays: the state has the shape of the step
size, so one state per chain (per-chain step sizes) or one shared by all
chains (the acceptance probabilities are then averaged over the chains).

The adapted quantity is coopjax's step size ``s`` (proposal
``x + (s^2/2) grad log p + s eps``); blackjax adapts its ``e = s^2 / 2``.
Since ``log e = 2 log s - log 2``, the two schemes differ only in the
effective ``gamma``; both converge to the step size hitting the target.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from coopjax.samplers import keys as keys_lib
from coopjax.samplers import kernels

MALA_TARGET = 0.57  # Roberts & Rosenthal (1998): optimal MALA acceptance


class DualAveragingState(NamedTuple):
  """Dual-averaging state; every field has the step size's shape.

  Attributes:
    log_step_size: ``log s_t``, the step size to use for the next step.
    log_step_size_avg: ``log sbar_t``, the averaged iterate (the result).
    step: ``t``, the number of updates so far.
    avg_error: ``Hbar_t``.
    mu: ``log(10 s_0)``, the point ``log s`` is shrunk towards.
  """
  log_step_size: jax.Array
  log_step_size_avg: jax.Array
  step: jax.Array
  avg_error: jax.Array
  mu: jax.Array


def dual_averaging_init(step_size: Any) -> DualAveragingState:
  """Starts dual averaging at ``step_size`` (scalar: shared; ``[*batch]``: per chain)."""
  log_s = jnp.log(jnp.asarray(step_size, jnp.result_type(float)))
  zeros = jnp.zeros_like(log_s)
  return DualAveragingState(log_s, zeros, jnp.zeros(log_s.shape, jnp.int32),
                            zeros, log_s + jnp.log(10.0))


def dual_averaging_update(state: DualAveragingState, acceptance_prob: Any, *,
                          target: float = MALA_TARGET, t0: float = 10.0,
                          gamma: float = 0.05,
                          kappa: float = 0.75) -> DualAveragingState:
  """One dual-averaging update from the last step's acceptance probabilities.

  Args:
    state: the current :class:`DualAveragingState`.
    acceptance_prob: the step's acceptance probabilities, of the state's
      shape (per chain), or of any shape when the state is a scalar (shared:
      their mean is used).
    target: the acceptance rate to reach (0.57 for MALA).
    t0: damps the first updates.
    gamma: scale of the step away from ``mu`` (larger is slower).
    kappa: in (0.5, 1], the averaging weights' decay.

  Returns:
    The new state.

  Raises:
    ValueError: for acceptance probabilities that match neither a scalar
      (shared) state nor a per-chain one.
  """
  alpha = jnp.asarray(acceptance_prob, state.avg_error.dtype)
  if state.log_step_size.ndim == 0:
    alpha = jnp.mean(alpha)
  elif alpha.shape != state.log_step_size.shape:
    raise ValueError(
        'acceptance_prob must have the per-chain state\'s shape '
        f'{state.log_step_size.shape}; got {alpha.shape}. For one step size '
        'shared by all chains, start from a scalar step size.')
  t = state.step + 1
  tf = t.astype(alpha.dtype)
  w = 1.0 / (tf + t0)
  avg_error = (1.0 - w) * state.avg_error + w * (target - alpha)
  log_s = state.mu - jnp.sqrt(tf) / gamma * avg_error
  eta = tf ** (-kappa)
  log_avg = eta * log_s + (1.0 - eta) * state.log_step_size_avg
  return DualAveragingState(log_s, log_avg, t, avg_error, state.mu)


def dual_averaging_step_size(state: DualAveragingState) -> jax.Array:
  """The adapted step size ``sbar_t`` (to keep once adaptation ends)."""
  return jnp.exp(state.log_step_size_avg)


def adapt_step_size(key: Any, state: kernels.LangevinState,
                    log_prob_fn: kernels.LogProbFn, *, n_steps: int,
                    step_size: Any, target: float = MALA_TARGET,
                    kernel: Optional[Callable[..., Tuple[
                        kernels.LangevinState, kernels.StepInfo]]] = None,
                    t0: float = 10.0, gamma: Optional[float] = None,
                    kappa: float = 0.75, **kernel_kwargs
                    ) -> Tuple[kernels.LangevinState, jax.Array,
                               DualAveragingState]:
  """Runs ``n_steps`` of ``kernel`` while dual averaging adapts its step size.

  A ``lax.scan``; pure, so it can be jitted or vmapped by the caller.

  Args:
    key: one key (typed or legacy) or one per chain.
    state: the chains' :class:`~coopjax.samplers.kernels.LangevinState`.
    log_prob_fn: as for the kernel.
    n_steps: adaptation steps.
    step_size: the initial step size: a scalar adapts one step size shared by
      all chains (their mean acceptance is targeted), a ``[*batch]`` array one
      per chain.
    target: acceptance rate to reach.
    kernel: ``kernel(key, state, log_prob_fn, step_size=...)``; default
      :func:`~coopjax.samplers.kernels.mala_step`.
    t0, gamma, kappa: as in :func:`dual_averaging_update`. ``gamma``
      defaults to 0.05 (Hoffman & Gelman) for a shared step size and to 0.3
      per chain: one chain's acceptance probability is a noisy signal, and
      with 0.05 the per-chain iterates jitter by ~0.2 in ``log s`` after
      1500 steps, which biases the averaged step size (acceptance 0.60 for
      a 0.57 target on a 3-d Gaussian; 0.55-0.59 with 0.3 after 400 steps).
    **kernel_kwargs: further keyword arguments of the kernel.

  Returns:
    ``(state, step_size, da_state)``: the chains after adaptation, the
    adapted step size (shape of the initial one) and the averaging state.
  """
  kernel = kernels.mala_step if kernel is None else kernel
  if gamma is None:
    gamma = 0.05 if jnp.ndim(step_size) == 0 else 0.3
  keys = keys_lib.split_each(keys_lib.as_keys(key), n_steps)

  def body(carry, k):
    st, da = carry
    st, info = kernel(k, st, log_prob_fn, step_size=jnp.exp(da.log_step_size),
                      **kernel_kwargs)
    da = dual_averaging_update(da, info.acceptance_prob, target=target, t0=t0,
                               gamma=gamma, kappa=kappa)
    return (st, da), None

  (state, da), _ = jax.lax.scan(body, (state, dual_averaging_init(step_size)),
                                keys, length=n_steps)
  return state, dual_averaging_step_size(da), da
