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
from typing import Any, Dict, NamedTuple, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from coopjax import conditioning
from coopjax import langevin as langevin_lib
from coopjax.conditioning import Condition
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
    num_classes: classes the networks are conditioned on (0: unconditional);
      see :mod:`coopjax.conditioning`.
    label_drop: probability of training on the null label instead.
  """
  ebm: nn.Module
  initializer: Optional[nn.Module]
  levels: Levels
  n_steps: int = 15
  tweedie: bool = False
  num_classes: int = 0
  label_drop: float = 0.1

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


class Trace(NamedTuple):
  """What happened at each level of a sampling run, level T first.

  Attributes:
    levels: ``[T, num, ...]`` samples ``x_{t-1}`` after level ``t``'s chain.
    proposals: ``[T, num, ...]`` the initializer's proposals at level ``t``
      in the same (unscaled) variable, for comparison with ``levels``.
  """
  levels: jax.Array
  proposals: jax.Array


def level_energy(module: nn.Module, x: jax.Array, logsnr_levels: jax.Array,
                 level_index: jax.Array, update_stats: bool = False,
                 label: Optional[jax.Array] = None):
  """``f_theta(x, logsnr_levels[level_index] [, label])``.

  Without labels the features are computed once per level and selected;
  with labels they are computed per example. Use as
  ``ebm.apply(variables, x, logsnr_levels, idx, method=level_energy)``.
  """
  if label is not None:
    feats = module.time_features(logsnr_levels[level_index], update_stats,
                                 label=label)
    return module.energy(x, feats, update_stats)
  table = module.time_features(logsnr_levels, update_stats)
  # A one-hot matmul rather than a gather: its gradient is a small matmul,
  # where the gather's is a scatter-add (slow on XLA:CPU).
  one_hot = jax.nn.one_hot(level_index, logsnr_levels.shape[0], dtype=x.dtype)
  feats = jax.tree_util.tree_map(lambda a: one_hot @ a, table)
  return module.energy(x, feats, update_stats)


def level_features(model: CDRLModel, ebm_vars: Params, t: jax.Array,
                   cond: Optional[Condition] = None):
  """Time features of the EBM of level ``t`` (``[B]`` ints in 1..T).

  With ``cond``, one set per condition term: every leaf gets a leading
  ``[n_terms]`` axis.
  """
  if cond is None:
    table = model.ebm.apply(ebm_vars, model.table('logsnr')[:-1],
                            method='time_features')
    return jax.tree_util.tree_map(lambda a: a[t - 1], table)
  logsnr = model.table('logsnr')[t - 1]
  return jax.vmap(lambda lab: model.ebm.apply(
      ebm_vars, logsnr, label=lab, method='time_features'))(cond.labels)


def _energy(ebm: nn.Module, ebm_vars: Params, y: jax.Array, feats,
            coefs: Optional[jax.Array]) -> jax.Array:
  """``f(y)``, or ``sum_j coefs[j] f(y | feats[j])`` for a condition."""
  if coefs is None:
    return ebm.apply(ebm_vars, y, feats, method='energy')
  if coefs.shape[0] == 1:
    one = jax.tree_util.tree_map(lambda a: a[0], feats)
    return coefs[0] * ebm.apply(ebm_vars, y, one, method='energy')
  fs = jax.vmap(lambda fe: ebm.apply(ebm_vars, y, fe, method='energy'))(feats)
  return jnp.tensordot(coefs, fs, 1)


def _coefs(cond: Optional[Condition]):
  return None if cond is None else cond.coefs


def log_density(model: CDRLModel, ebm_vars: Params, x: jax.Array,
                t: int, cond: Optional[Condition] = None) -> jax.Array:
  """Log-density (up to a constant) of ``x_{t-1}`` under level ``t``'s EBM alone.

  ``f_theta(scale_t x, logsnr_{t-1}) / s_t^2``, the quantity the reference
  plots; at ``t = 1`` it is the learned density of the data.
  """
  tt = jnp.full((x.shape[0],), t, jnp.int32)
  scale = _bcast(model.table('scale')[tt], x)
  f = _energy(model.ebm, ebm_vars, scale * x,
              level_features(model, ebm_vars, tt, cond), _coefs(cond))
  return f / model.table('step_sq')[tt]


def ood_score(model: CDRLModel, ebm_vars: Params, x: jax.Array,
              cond: Optional[Condition] = None) -> jax.Array:
  """Out-of-distribution score ``f_theta(x, logsnr_0)`` (higher = in distribution)."""
  one = jnp.ones((x.shape[0],), jnp.int32)
  return _energy(model.ebm, ebm_vars, x,
                 level_features(model, ebm_vars, one, cond), _coefs(cond))


def propose(model: CDRLModel, init_params: Params, x_t: jax.Array,
            t: jax.Array, keys: jax.Array, cond: Optional[Condition] = None,
            dropout_keys: Optional[jax.Array] = None) -> jax.Array:
  """The chain's start ``y_0`` for ``x_t`` at levels ``t`` ``[B]``.

  With an initializer: ``g_phi(x_t, logsnr_t) + sqrt(beta_tilde_t) scale_t
  eps``, the mean weighted over the terms of ``cond`` (guidance and
  composition act on the initializer as on the EBM); for DRL (no
  initializer) ``y_0 = x_t``. ``dropout_keys`` (``[B]``) switch on the
  initializer's dropout (training).
  """
  if model.initializer is None:
    return x_t
  logsnr = model.table('logsnr')[t]
  kwargs = {} if dropout_keys is None else {'dropout_keys': dropout_keys}

  def mean(label):
    if label is not None:
      kwargs['label'] = label
    return model.initializer.apply({'params': init_params}, x_t, logsnr,
                                   **kwargs)

  if cond is None:
    m = mean(None)
  elif cond.coefs.shape[0] == 1:
    m = cond.coefs[0] * mean(cond.labels[0])
  else:
    m = jnp.tensordot(cond.coefs, jax.vmap(mean)(cond.labels), 1)
  std = _bcast(model.table('init_std')[t], x_t)
  return m + std * per_example_normal(keys, x_t.shape[1:], x_t.dtype)


def _conditional_log_prob(ebm: nn.Module):
  """``log p(y | x_t) = f(y) / s_t^2 - tie_t ||y - x_t||^2 / (2 beta_t)``."""

  def log_prob(y, ebm_vars, feats, coefs, x_t, inv_step_sq, tie_coef):
    f = _energy(ebm, ebm_vars, y, feats, coefs)
    return f * inv_step_sq - tie_coef * _sq_norm(y - x_t)

  return log_prob


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
    ``(y_K, info)`` with :class:`coopjax.langevin.LangevinInfo`.
  """
  n_steps = model.n_steps if n_steps is None else n_steps
  step_sq = model.table('step_sq')[t]
  tie_coef = model.table('tie')[t] / (2.0 * model.table('beta')[t])
  step = jnp.sqrt(step_sq * (model.n_steps / max(n_steps, 1)))
  args = (ebm_vars, level_features(model, ebm_vars, t, cond), _coefs(cond),
          x_t, 1.0 / step_sq, tie_coef)
  return langevin_lib.langevin(
      _conditional_log_prob(model.ebm), y0, keys, n_steps=n_steps,
      step_size=step, noise_scale=noise_scale, clamp=clamp, args=args)


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
  y_data = _bcast(model.table('scale')[t], x) * noisy(model, x, t - 1, eps)
  return t, noisy(model, x, t, eps), y_data


def noisy(model: CDRLModel, x: jax.Array, i: jax.Array,
          eps: jax.Array) -> jax.Array:
  """``x_i = sqrt(abar_i) x + sqrt(1 - abar_i) eps`` (``i`` scalar or ``[B]``)."""
  abar = model.table('abar')[i]
  return (_bcast(jnp.sqrt(abar), x) * x +
          _bcast(jnp.sqrt(1.0 - abar), x) * eps)


def _unpack(batch):
  if isinstance(batch, dict):
    return batch['x'], batch.get('label')
  return batch, None


def loss_and_grads(model: CDRLModel, params: Dict[str, Params],
                   stats: Dict[str, Params], batch: Any, keys: jax.Array):
  """Both CDRL losses and their gradients on one (per-device) batch.

  EBM: ``mean w_t [f(sg(y_K)) - f(y_data)]``; initializer: ``mean ||sg(y_K) -
  y_0||^2`` through the very proposal the chain started from. The chain runs on
  the current EBM; spectral-norm statistics are updated once, in the EBM loss.
  For a class-conditional model (``model.num_classes > 0``) labels are dropped
  to null with probability ``model.label_drop``.

  Args:
    model: the model.
    params: ``{'ebm': ..., 'init': ...}`` (no ``'init'`` for DRL).
    stats: ``{'ebm': batch_stats}``.
    batch: ``[B, ...]`` data, or ``{'x': [B, ...], 'label': [B] or [B, n]}``.
    keys: ``[B]`` per-example keys.

  Returns:
    ``(grads, new_stats, metrics)``; gradients are of per-device means.
  """
  x, label = _unpack(batch)
  k_pair, k_init, k_chain, k_label, k_drop = split_each(keys, 5)
  t, x_t, y_data = training_pairs(model, x, k_pair)
  cond = None
  if model.num_classes and label is not None:
    label = conditioning.training_labels(label, k_label, model.label_drop)
    cond = conditioning.conditional(label)
  else:
    label = None
  ebm_vars = {'params': params['ebm'], 'batch_stats': stats['ebm']}
  batch_size = x.shape[0]
  grads, metrics = {}, {}
  if model.initializer is None:
    y0 = x_t
  else:
    drop = k_drop if _has_dropout(model.initializer) else None
    y0, init_vjp = jax.vjp(
        lambda p: propose(model, p, x_t, t, k_init, cond, drop),
        params['init'])
  y_k, info = refine(model, ebm_vars, jax.lax.stop_gradient(y0), x_t, t,
                     k_chain, cond=cond)
  y_k = jax.lax.stop_gradient(y_k)
  weight = model.table('loss_weight')[t]
  both_labels = None if label is None else jnp.concatenate([label, label])

  def ebm_loss(p):
    f, updates = model.ebm.apply(
        {'params': p, 'batch_stats': stats['ebm']},
        jnp.concatenate([y_data, y_k]), model.table('logsnr')[:-1],
        jnp.concatenate([t, t]) - 1, True, both_labels, method=level_energy,
        mutable=['batch_stats'])
    f_pos, f_neg = f[:batch_size], f[batch_size:]
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
    grads['init'], = init_vjp(2.0 * diff / batch_size)
  metrics['refine_dist'] = jnp.mean(jnp.sqrt(_sq_norm(y_k - y0)))
  return grads, {'ebm': new_stats}, metrics


def _has_dropout(module: nn.Module) -> bool:
  return float(getattr(module, 'dropout', 0.0) or 0.0) > 0.0


def tweedie(model: CDRLModel, ebm_vars: Params, x: jax.Array,
            cond: Optional[Condition] = None) -> jax.Array:
  """Final denoising ``x_0 = (x + (1 - abar_0) score) / sqrt(abar_0)``.

  ``score = grad_x f(scale_1 x, logsnr_0) / (s_1^2 / 2)``: twice the gradient
  the Langevin step constant would give, as in the reference.
  """
  one = jnp.ones((x.shape[0],), jnp.int32)
  feats = level_features(model, ebm_vars, one, cond)
  scale = model.table('scale')[1]

  def f_sum(z):
    return jnp.sum(_energy(model.ebm, ebm_vars, scale * z, feats,
                           _coefs(cond)))

  score = jax.grad(f_sum)(x) / (0.5 * model.table('step_sq')[1])
  abar0 = model.table('abar')[0]
  return (x + (1.0 - abar0) * score) / jnp.sqrt(abar0)


def sample(model: CDRLModel, ebm_vars: Params, init_params: Optional[Params],
           key: jax.Array, num: int, shape: Tuple[int, ...],
           n_steps: Optional[int] = None, start: Any = 0,
           cond: Optional[Condition] = None,
           inpaint: Optional[Tuple[jax.Array, jax.Array]] = None):
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
    cond: class condition (see :mod:`coopjax.conditioning`), or None.
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
    scale = model.table('scale')[t]
    y0 = propose(model, init_params, x_t, tt, k_init, cond)
    clamp = None
    if inpaint is not None:
      known = scale * noisy(model, x_obs, t - 1, obs_eps)
      y0 = jnp.where(mask, known, y0)
      clamp = (mask, known)
    y_k, _ = refine(model, ebm_vars, y0, x_t, tt, k_chain, n_steps, cond=cond,
                    clamp=clamp)
    x_prev = y_k / scale
    return x_prev, (x_prev, y0 / scale)

  x, (xs, proposals) = jax.lax.scan(level, x_top,
                                    jnp.arange(model.num_levels, 0, -1))
  if model.tweedie:
    x = tweedie(model, ebm_vars, x, cond)
  if inpaint is not None:
    x = jnp.where(mask, x_obs, x)
  return x, Trace(xs, proposals)
