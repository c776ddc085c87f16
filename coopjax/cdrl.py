"""Cooperative diffusion recovery likelihood (CDRL) as pure functions.

A :class:`CDRLModel` bundles the two network definitions and the schedule; every
function here is a pure function of parameters, inputs and keys:

* :func:`log_density` - the marginal log-density ``f(scale_t x) / s_t^2`` a
  level's EBM assigns (for plots and the density metric);
* :func:`propose` - the initializer's start ``y_0 = g_phi(x_t) + noise``;
* :func:`refine` - K Langevin steps on ``log p(y | x_t)``;
* :func:`loss_and_grads` - both losses and their gradients for one batch;
* :func:`sample` - Algorithm 2 (optionally with fewer steps and the Tweedie
  step).

The EBM must offer ``time_features(logsnr, update_stats)`` and
``energy(x, features, update_stats)`` methods (see ``coopjax.models.mlp``);
noise-level features are computed once per level, never inside a chain.
DRL is the same machinery with ``initializer=None``: the chain starts at x_t.

Randomness is per example: each example's key is ``fold_in(key, index)`` of
its index in the global batch, so results do not depend on how the batch is
sharded over devices.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from coopjax import langevin as langevin_lib
from coopjax.rng import example_keys, per_example_normal, split_each
from coopjax.schedules import Levels

Params = Any


@dataclasses.dataclass(frozen=True, eq=False)
class CDRLModel:
  """Static description of a CDRL (or DRL) model.

  Attributes:
    ebm: the energy network (higher output = more likely).
    initializer: the initializer network, or None for DRL.
    levels: the per-level constants.
    n_steps: Langevin steps per level (K).
    tweedie: apply the final Tweedie denoising step when sampling.
  """
  ebm: nn.Module
  initializer: Optional[nn.Module]
  levels: Levels
  n_steps: int = 15
  tweedie: bool = False

  @property
  def num_levels(self) -> int:
    return self.levels.num_levels

  def table(self, name: str) -> jax.Array:
    """A per-level array of :class:`Levels` as a JAX constant."""
    return jnp.asarray(getattr(self.levels, name))


def _bcast(v: jax.Array, x: jax.Array) -> jax.Array:
  return v.reshape(v.shape + (1,) * (x.ndim - v.ndim))


def _sq_norm(x: jax.Array) -> jax.Array:
  return jnp.sum(jnp.square(x).reshape(x.shape[0], -1), axis=-1)


def level_energy(module: nn.Module, x: jax.Array, logsnr_levels: jax.Array,
                 level_index: jax.Array, update_stats: bool = False):
  """``f_theta(x, logsnr_levels[level_index])`` with features computed per level.

  Use as ``ebm.apply(variables, x, logsnr_levels, idx, method=level_energy)``.
  """
  table = module.time_features(logsnr_levels, update_stats)
  # A one-hot matmul rather than a gather: its gradient is a small matmul,
  # where the gather's is a scatter-add (slow on XLA:CPU).
  one_hot = jax.nn.one_hot(level_index, logsnr_levels.shape[0], dtype=x.dtype)
  feats = jax.tree_util.tree_map(lambda a: one_hot @ a, table)
  return module.energy(x, feats, update_stats)


def level_features(model: CDRLModel, ebm_vars: Params, t: jax.Array):
  """Time features of the EBM of level ``t`` (``[B]`` ints in 1..T)."""
  table = model.ebm.apply(ebm_vars, model.table('logsnr')[:-1],
                          method='time_features')
  return jax.tree_util.tree_map(lambda a: a[t - 1], table)


def log_density(model: CDRLModel, ebm_vars: Params, x: jax.Array,
                t: int) -> jax.Array:
  """Log-density (up to a constant) of ``x_{t-1}`` under level ``t``'s EBM alone.

  ``f_theta(scale_t x, logsnr_{t-1}) / s_t^2``, the quantity the reference
  plots; at ``t = 1`` it is the learned density of the data.
  """
  tt = jnp.full((x.shape[0],), t, jnp.int32)
  scale = _bcast(model.table('scale')[tt], x)
  f = model.ebm.apply(ebm_vars, scale * x, level_features(model, ebm_vars, tt),
                      method='energy')
  return f / model.table('step_sq')[tt]


def propose(model: CDRLModel, init_params: Params, x_t: jax.Array,
            t: jax.Array, keys: jax.Array) -> jax.Array:
  """The chain's start ``y_0`` for ``x_t`` at levels ``t`` ``[B]``.

  With an initializer: ``g_phi(x_t, logsnr_t) + sqrt(beta_tilde_t) scale_t
  eps``; for DRL (no initializer) ``y_0 = x_t``.
  """
  if model.initializer is None:
    return x_t
  mean = model.initializer.apply({'params': init_params}, x_t,
                                 model.table('logsnr')[t])
  std = _bcast(model.table('init_std')[t], x_t)
  return mean + std * per_example_normal(keys, x_t.shape[1:], x_t.dtype)


def _conditional_log_prob(ebm: nn.Module):
  """``log p(y | x_t) = f(y) / s_t^2 - tie_t ||y - x_t||^2 / (2 beta_t)``."""

  def log_prob(y, ebm_vars, feats, x_t, inv_step_sq, tie_coef):
    f = ebm.apply(ebm_vars, y, feats, method='energy')
    return f * inv_step_sq - tie_coef * _sq_norm(y - x_t)

  return log_prob


def refine(model: CDRLModel, ebm_vars: Params, y0: jax.Array, x_t: jax.Array,
           t: jax.Array, keys: jax.Array, n_steps: Optional[int] = None,
           noise_scale: float = 1.0):
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

  Returns:
    ``(y_K, info)`` with :class:`coopjax.langevin.LangevinInfo`.
  """
  n_steps = model.n_steps if n_steps is None else n_steps
  step_sq = model.table('step_sq')[t]
  tie_coef = model.table('tie')[t] / (2.0 * model.table('beta')[t])
  step = jnp.sqrt(step_sq * (model.n_steps / max(n_steps, 1)))
  args = (ebm_vars, level_features(model, ebm_vars, t), x_t, 1.0 / step_sq,
          tie_coef)
  return langevin_lib.langevin(
      _conditional_log_prob(model.ebm), y0, keys, n_steps=n_steps,
      step_size=step, noise_scale=noise_scale, args=args)


def training_pairs(model: CDRLModel, x: jax.Array, keys: jax.Array):
  """Levels, noisy pairs and the positive samples for a data batch.

  Returns:
    ``(t, x_t, y_data)``: ``t`` ``[B]`` uniform in 1..T; ``x_t`` and
    ``x_{t-1}`` share one noise draw (variance reduction); ``y_data =
    scale_t x_{t-1}``.
  """
  k_t, k_eps = split_each(keys, 2)
  t = jax.vmap(lambda k: jax.random.randint(k, (), 1, model.num_levels + 1))(k_t)
  eps = per_example_normal(k_eps, x.shape[1:], x.dtype)
  abar = model.table('abar')

  def noisy(i):
    return (_bcast(jnp.sqrt(abar[i]), x) * x +
            _bcast(jnp.sqrt(1.0 - abar[i]), x) * eps)

  y_data = _bcast(model.table('scale')[t], x) * noisy(t - 1)
  return t, noisy(t), y_data


def loss_and_grads(model: CDRLModel, params: Dict[str, Params],
                   stats: Dict[str, Params], x: jax.Array, keys: jax.Array):
  """Both CDRL losses and their gradients on one (per-device) batch.

  EBM: ``mean w_t [f(sg(y_K)) - f(y_data)]``; initializer: ``mean ||sg(y_K) -
  y_0||^2`` through the very proposal the chain started from. The chain runs on
  the current EBM; spectral-norm statistics are updated once, in the EBM loss.

  Args:
    model: the model.
    params: ``{'ebm': ..., 'init': ...}`` (no ``'init'`` for DRL).
    stats: ``{'ebm': batch_stats}``.
    x: ``[B, ...]`` data.
    keys: ``[B]`` per-example keys.

  Returns:
    ``(grads, new_stats, metrics)``; gradients are of per-device means.
  """
  k_pair, k_init, k_chain = split_each(keys, 3)
  t, x_t, y_data = training_pairs(model, x, k_pair)
  ebm_vars = {'params': params['ebm'], 'batch_stats': stats['ebm']}
  batch = x.shape[0]
  grads, metrics = {}, {}
  if model.initializer is None:
    y0 = x_t
  else:
    y0, init_vjp = jax.vjp(
        lambda p: propose(model, p, x_t, t, k_init), params['init'])
  y_k, info = refine(model, ebm_vars, jax.lax.stop_gradient(y0), x_t, t,
                     k_chain)
  y_k = jax.lax.stop_gradient(y_k)
  weight = model.table('loss_weight')[t]

  def ebm_loss(p):
    f, updates = model.ebm.apply(
        {'params': p, 'batch_stats': stats['ebm']},
        jnp.concatenate([y_data, y_k]), model.table('logsnr')[:-1],
        jnp.concatenate([t, t]) - 1, True, method=level_energy,
        mutable=['batch_stats'])
    f_pos, f_neg = f[:batch], f[batch:]
    loss = jnp.mean(weight * (f_neg - f_pos))
    return loss, (updates['batch_stats'], f_pos, f_neg)

  (loss, (new_stats, f_pos, f_neg)), grads['ebm'] = jax.value_and_grad(
      ebm_loss, has_aux=True)(params['ebm'])
  metrics.update(ebm_loss=loss, f_data=jnp.mean(f_pos),
                 f_sample=jnp.mean(f_neg),
                 chain_grad_norm=jnp.mean(info.grad_norm))
  if model.initializer is not None:
    diff = y0 - y_k
    metrics['init_loss'] = jnp.mean(_sq_norm(diff))
    grads['init'], = init_vjp(2.0 * diff / batch)
  metrics['refine_dist'] = jnp.mean(jnp.sqrt(_sq_norm(y_k - y0)))
  return grads, {'ebm': new_stats}, metrics


def tweedie(model: CDRLModel, ebm_vars: Params, x: jax.Array) -> jax.Array:
  """Final denoising ``x_0 = (x + (1 - abar_0) score) / sqrt(abar_0)``.

  ``score = grad_x f(scale_1 x, logsnr_0) / (s_1^2 / 2)``: twice the gradient
  the Langevin step constant would give, as in the reference.
  """
  one = jnp.ones((x.shape[0],), jnp.int32)
  feats = level_features(model, ebm_vars, one)
  scale = model.table('scale')[1]

  def f_sum(z):
    return jnp.sum(model.ebm.apply(ebm_vars, scale * z, feats, method='energy'))

  score = jax.grad(f_sum)(x) / (0.5 * model.table('step_sq')[1])
  abar0 = model.table('abar')[0]
  return (x + (1.0 - abar0) * score) / jnp.sqrt(abar0)


def sample(model: CDRLModel, ebm_vars: Params, init_params: Optional[Params],
           key: jax.Array, num: int, shape: Tuple[int, ...],
           n_steps: Optional[int] = None, start: Any = 0):
  """Algorithm 2: draw ``num`` samples, from ``x_T ~ N(0, I)`` down to ``x_0``.

  Args:
    model: the model.
    ebm_vars: EBM variables (typically the EMA parameters).
    init_params: initializer parameters (ignored for DRL).
    key: PRNG key; example ``i`` uses ``fold_in(key, start + i)``.
    num: number of samples (static).
    shape: shape of one example (static).
    n_steps: K' Langevin steps per level (default K).
    start: index of the first example, for sharded or chunked sampling.

  Returns:
    ``(x_0, levels)``: final samples ``[num, *shape]`` and ``[T, num, *shape]``,
    ``levels[i]`` the samples ``x_{T-1-i}`` after level ``T - i``
    (before the Tweedie step).
  """
  ex_keys = example_keys(key, start, num)
  x_top = per_example_normal(jax.vmap(lambda k: jax.random.fold_in(k, 0))(
      ex_keys), shape)

  def level(x_t, t):
    level_keys = jax.vmap(jax.random.fold_in, (0, None))(ex_keys, t)
    k_init, k_chain = split_each(level_keys, 2)
    tt = jnp.full((num,), t, jnp.int32)
    y0 = propose(model, init_params, x_t, tt, k_init)
    y_k, _ = refine(model, ebm_vars, y0, x_t, tt, k_chain, n_steps)
    x_prev = y_k / model.table('scale')[t]
    return x_prev, x_prev

  x, xs = jax.lax.scan(level, x_top, jnp.arange(model.num_levels, 0, -1))
  if model.tweedie:
    x = tweedie(model, ebm_vars, x)
  return x, xs
