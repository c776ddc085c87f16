"""CDRL sampling as pure functions: proposal, Langevin refinement, Algorithm 2.

* :func:`propose` - the initializer's start ``y_0 = g_phi(x_t) + noise``;
* :func:`refine` - K Langevin steps on ``log p(y | x_t)`` from a start;
* :func:`denoise_step` - the last Langevin step without its noise;
* :func:`tweedie_denoise` - the reference's final denoising step;
* :func:`sample` - Algorithm 2 (optionally with fewer steps, a condition or
  inpainting).

Randomness is per example: each example's key is ``fold_in(key, index)`` of
its index, so results do not depend on how the samples are chunked or
sharded over devices.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from coopjax.cdrl.conditioning import Condition
from coopjax.cdrl.model import (CDRLModel, Params, bcast, cond_coefs,
                                conditional_log_prob, energy, level_features,
                                noisy)
from coopjax.rng import example_keys, per_example_normal, split_each
from coopjax.samplers import langevin as langevin_lib

class Trace(NamedTuple):
  """What happened at each level of a sampling run, level T first.

  Attributes:
    levels: ``[T, num, ...]`` samples ``x_{t-1}`` after level ``t``'s chain.
    proposals: ``[T, num, ...]`` the initializer's proposals at level ``t``
      in the same (unscaled) variable, for comparison with ``levels``.
  """
  levels: jax.Array
  proposals: jax.Array


def propose(model: CDRLModel, init_params: Params, x_t: jax.Array,
            t: jax.Array, keys: jax.Array, cond: Optional[Condition] = None,
            dropout_keys: Optional[jax.Array] = None) -> jax.Array:
  """The chain's start ``y_0`` for ``x_t`` at levels ``t`` ``[B]``.

  With an initializer: ``g_phi(x_t, logsnr_t) + sqrt(beta_tilde_t) scale_t
  eps``. A conditional initializer (``model.label_init``) gives the mean
  weighted over the condition's initializer terms (``cond.init_coefs``, or
  ``cond.coefs`` where None: guidance acts on the initializer as on the
  EBM; a composition averages its concepts' guided means, see
  :func:`coopjax.cdrl.conditioning.composed`); an unconditional one gives
  ``g_phi(x_t)`` for every condition. For DRL (no initializer) ``y_0 =
  x_t``. ``dropout_keys`` (``[B]``) switch on the initializer's dropout
  (training).
  """
  if model.initializer is None:
    return x_t
  logsnr = model.net_input[t]
  kwargs = {} if dropout_keys is None else {'dropout_keys': dropout_keys}

  def mean(label):
    if label is not None:
      kwargs['label'] = label
    return model.initializer.apply({'params': init_params}, x_t, logsnr,
                                   **kwargs)

  if cond is None or not model.label_init:
    m = mean(None)
  else:
    coefs = cond.coefs if cond.init_coefs is None else cond.init_coefs
    if coefs.shape[0] == 1:
      m = coefs[0] * mean(cond.labels[0])
    else:
      m = jnp.tensordot(coefs, jax.vmap(mean)(cond.labels), 1)
  std = bcast(model.consts.proposal_std[t], x_t)
  return m + std * per_example_normal(keys, x_t.shape[1:], x_t.dtype)


def refine(model: CDRLModel, ebm_vars: Params, y0: jax.Array, x_t: jax.Array,
           t: jax.Array, keys: jax.Array, n_steps: Optional[int] = None,
           noise_scale: float = 1.0, cond: Optional[Condition] = None,
           clamp: Optional[Tuple[jax.Array, jax.Array]] = None):
  """K Langevin steps on level ``t``'s conditional EBM, started at ``y0``.

  Args:
    model: the model.
    ebm_vars: EBM variables (``params`` and spectral-norm ``batch_stats``).
    y0: ``[B, ...]`` start, in the scaled variable ``y``.
    x_t: ``[B, ...]`` the noisy observation the chain is conditioned on.
    t: ``[B]`` levels in 1..T.
    keys: ``[B]`` per-example keys.
    n_steps: K' steps; fewer than ``model.n_steps`` scales the step size by
      ``sqrt(K / K')``.
    noise_scale: 1 for Langevin, 0 for gradient ascent.
    cond: class condition (guidance, composition), or None.
    clamp: ``(mask, values)``: coordinates kept at ``values`` after every
      step (inpainting).

  Returns:
    ``(y_K, info)`` with :class:`coopjax.samplers.langevin.LangevinInfo`.
  """
  n_steps = model.n_steps if n_steps is None else n_steps
  step_sq, args = _chain_args(model, ebm_vars, x_t, t, n_steps, cond)
  return langevin_lib.langevin(
      conditional_log_prob(model.ebm), y0, keys, n_steps=n_steps,
      step_size=jnp.sqrt(step_sq), noise_scale=noise_scale, clamp=clamp,
      args=args)


def _chain_args(model: CDRLModel, ebm_vars: Params, x_t: jax.Array,
                t: jax.Array, n_steps: int, cond: Optional[Condition]):
  """``(s^2, args)``: the squared Langevin step of a K'-step chain at levels
  ``t`` (``s_t^2 K / K'``) and the arguments of
  :func:`coopjax.cdrl.model.conditional_log_prob` after ``y``."""
  step_sq = model.consts.step_size_sq[t]
  tie_coef = model.consts.tie_mask[t] / (2.0 * model.consts.beta[t])
  args = (ebm_vars, level_features(model, ebm_vars, t, cond), cond_coefs(cond),
          x_t, 1.0 / step_sq, tie_coef)
  return step_sq * (model.n_steps / max(n_steps, 1)), args


def denoise_step(model: CDRLModel, ebm_vars: Params, y: jax.Array,
                 x_t: jax.Array, t: jax.Array, n_steps: Optional[int] = None,
                 cond: Optional[Condition] = None,
                 clamp: Optional[Tuple[jax.Array, jax.Array]] = None
                 ) -> jax.Array:
  """``y + s^2 grad_y log p(y | x_t)``: the last Langevin step without its noise.

  A chain's last step adds noise of variance ``s^2`` (the chain's squared
  step, see :func:`refine`); Tweedie's formula estimates the point before
  that noise as ``y + s^2 grad log p(y)``. At the last level this removes
  the blur of std ``s_1`` the final step leaves in the samples. It sharpens
  rather than corrects (a chain near stationarity already samples ``p``):
  it helps at sharp edges and narrows thin structures; measured in
  docs/algorithms.md, section 2.7.

  Args:
    model, ebm_vars, x_t, t, cond: as :func:`refine`.
    y: ``[B, ...]`` the chain's last state, in the scaled variable.
    n_steps: the chain's K' (default K); sets ``s^2`` as in :func:`refine`.
    clamp: ``(mask, values)``: coordinates kept at ``values``.

  Returns:
    The denoised ``[B, ...]``.
  """
  n_steps = model.n_steps if n_steps is None else n_steps
  step_sq, args = _chain_args(model, ebm_vars, x_t, t, n_steps, cond)
  log_prob = conditional_log_prob(model.ebm)
  grad = jax.grad(lambda z: jnp.sum(log_prob(z, *args)))(y)
  y = y + bcast(step_sq, y) * grad
  if clamp is not None:
    y = jnp.where(clamp[0], clamp[1], y)
  return y


def tweedie_denoise(model: CDRLModel, ebm_vars: Params, x: jax.Array,
            cond: Optional[Condition] = None) -> jax.Array:
  """Final denoising ``x_0 = (x + (1 - abar_0) score) / sqrt(abar_0)``.

  ``score = grad_x f(scale_1 x, logsnr_0) / (s_1^2 / 2)``: twice the gradient
  the Langevin step constant would give, as in the reference.
  """
  one = jnp.ones((x.shape[0],), jnp.int32)
  feats = level_features(model, ebm_vars, one, cond)
  scale = model.consts.y_scale[1]

  def f_sum(z):
    return jnp.sum(energy(model.ebm, ebm_vars, scale * z, feats,
                           cond_coefs(cond)))

  score = jax.grad(f_sum)(x) / (0.5 * model.consts.step_size_sq[1])
  abar0 = model.consts.abar[0]
  return (x + (1.0 - abar0) * score) / jnp.sqrt(abar0)


def sample(model: CDRLModel, ebm_vars: Params, init_params: Optional[Params],
           key: jax.Array, num: int, shape: Tuple[int, ...],
           n_steps: Optional[int] = None, start: Any = 0,
           cond: Optional[Condition] = None,
           inpaint: Optional[Tuple[jax.Array, jax.Array]] = None):
  """Algorithm 2: draw ``num`` samples, from ``x_T ~ N(0, I)`` down to ``x_0``.

  The Langevin chains use the noise scale ``model.sample_noise``.

  Args:
    model: the model.
    ebm_vars: EBM variables (typically the EMA parameters).
    init_params: initializer parameters (ignored for DRL).
    key: PRNG key; example ``i`` uses ``fold_in(key, start + i)``.
    num: number of samples (static).
    shape: shape of one example (static).
    n_steps: K' Langevin steps per level (default K).
    start: index of the first example, for sharded or chunked sampling.
    cond: class condition (see :mod:`coopjax.cdrl.conditioning`), or None.
    inpaint: ``(mask, x_obs)``, ``[num, *shape]`` each: where ``mask`` is
      true, every proposal and every Langevin step is reset to the noisy
      observation of the current level, and the output equals ``x_obs``.

  Returns:
    ``(x_0, trace)``: final samples ``[num, *shape]`` and a :class:`Trace`.
  """
  ex_keys = example_keys(key, start, num)
  top_keys, obs_keys = split_each(ex_keys, 2)
  x_top = per_example_normal(top_keys, shape)
  if inpaint is not None:
    mask, x_obs = inpaint
    obs_eps = per_example_normal(obs_keys, shape)
    x_top = jnp.where(mask, noisy(model, x_obs, model.num_levels, obs_eps),
                      x_top)

  def level(x_t, t):
    level_keys = jax.vmap(jax.random.fold_in, (0, None))(ex_keys, t)
    k_init, k_chain = split_each(level_keys, 2)
    tt = jnp.full((num,), t, jnp.int32)
    scale = model.consts.y_scale[t]
    y0 = propose(model, init_params, x_t, tt, k_init, cond)
    clamp = None
    if inpaint is not None:
      known = scale * noisy(model, x_obs, t - 1, obs_eps)
      y0 = jnp.where(mask, known, y0)
      clamp = (mask, known)
    y_k, _ = refine(model, ebm_vars, y0, x_t, tt, k_chain, n_steps,
                    noise_scale=model.sample_noise, cond=cond, clamp=clamp)
    if model.final_denoise:
      y_k = jax.lax.cond(
          t == 1, lambda y: denoise_step(model, ebm_vars, y, x_t, tt, n_steps,
                                         cond, clamp), lambda y: y, y_k)
    x_prev = y_k / scale
    return x_prev, (x_prev, y0 / scale)

  x, (xs, proposals) = jax.lax.scan(level, x_top,
                                    jnp.arange(model.num_levels, 0, -1))
  if model.tweedie:
    x = tweedie_denoise(model, ebm_vars, x, cond)
  if inpaint is not None:
    x = jnp.where(mask, x_obs, x)
  return x, Trace(xs, proposals)
