"""The two CDRL losses and their gradients for one (per-device) batch."""

from __future__ import annotations

from typing import Any, Dict

import flax.linen as nn
import jax
import jax.numpy as jnp

from coopjax.cdrl import conditioning
from coopjax.models import layers
from coopjax.cdrl.model import (CDRLModel, Params, bcast, level_energy, noisy,
                                sq_norm)
from coopjax.cdrl.sampling import propose, refine
from coopjax.rng import per_example_normal, split_each

# The stream (``fold_in`` of an example's level key) that decides whether the
# example moves to the clean level.
_CLEAN_LEVEL_STREAM = 7


def training_levels(model: CDRLModel, keys: jax.Array) -> jax.Array:
  """``[B]`` training levels: uniform in ``1..T``, except that a share
  ``model.clean_level_share`` of the examples (in expectation) take level 1.

  Level ``t`` is drawn from ``keys[i]``; the move to level 1 from the
  example's own ``fold_in(keys[i], 7)``, so a share of 0 gives the papers'
  uniform levels, draw for draw.
  """
  t = jax.vmap(lambda k: jax.random.randint(k, (), 1, model.num_levels + 1))(
      keys)
  if model.clean_level_share:
    u = jax.vmap(lambda k: jax.random.uniform(
        jax.random.fold_in(k, _CLEAN_LEVEL_STREAM)))(keys)
    t = jnp.where(u < model.clean_level_share, 1, t)
  return t


def training_pairs(model: CDRLModel, x: jax.Array, keys: jax.Array):
  """Levels, noisy pairs and the positive samples for a data batch.

  Returns:
    ``(t, x_t, y_data)``: ``t`` ``[B]`` from :func:`training_levels`; ``y_data =
    scale_t x_{t-1}``. With ``model.pair_noise == 'shared'`` (CDRL) ``x_t``
    and ``x_{t-1}`` share one noise draw (variance reduction); with
    ``'independent'`` (DRL) ``x_t = sqrt(as_t) x_{t-1} + sqrt(beta_t) eps'``
    with a second, independent draw, as the DRL authors' ``q_sample_pairs``.
  """
  k_t, k_eps = split_each(keys, 2)
  t = training_levels(model, k_t)
  if model.pair_noise == 'shared':
    eps = per_example_normal(k_eps, x.shape[1:], x.dtype)
    x_prev, x_t = noisy(model, x, t - 1, eps), noisy(model, x, t, eps)
  else:
    k_eps, k_step = split_each(k_eps, 2)
    x_prev = noisy(model, x, t - 1,
                   per_example_normal(k_eps, x.shape[1:], x.dtype))
    step_eps = per_example_normal(k_step, x.shape[1:], x.dtype)
    x_t = (bcast(jnp.sqrt(model.consts.alpha_sq[t]), x) * x_prev +
           bcast(jnp.sqrt(model.consts.beta[t]), x) * step_eps)
  return t, x_t, bcast(model.consts.y_scale[t], x) * x_prev


def _unpack(batch):
  if isinstance(batch, dict):
    return batch['x'], batch.get('label')
  return batch, None


def loss_and_grads(model: CDRLModel, params: Dict[str, Params],
                   stats: Dict[str, Params], batch: Any, keys: jax.Array):
  """Both CDRL losses and their gradients on one (per-device) batch.

  EBM: ``mean w_t [f(sg(y_K)) - f(y_data)]``; initializer: ``mean ||sg(y_K) -
  y_0||^2`` through the very proposal the chain started from. The chain runs on
  the current EBM. Spectral-norm statistics take their one power iteration
  first and the new ``u``, ``v`` serve the chain and both energies, as the
  authors' training-mode positive forward followed by eval-mode chain and
  negative forward.
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
    Metrics (batch means): ``ebm_loss``; ``f_data`` and ``f_sample``, the
    network outputs of the positives and the chains' results, and
    ``energy_gap = f_data - f_sample``; ``chain_grad_norm``, the norm of
    ``grad_y log p(y | x_t)`` over the chains' steps; ``refine_dist``, the
    distance ``||y_K - y_0||`` a chain moved from its start (the
    initializer's proposal; ``x_t`` for DRL), and ``refine_dist_<l>`` the same
    over the examples that drew level ``l`` (:func:`per_level_means`);
    ``init_loss`` with an initializer. What healthy and diverging runs show:
    README, "Watching a run".
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
  new_stats = layers.power_iteration(params['ebm'], stats['ebm'])
  ebm_vars = {'params': params['ebm'], 'batch_stats': new_stats}
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
  weight = model.consts.loss_weight[t]
  both_labels = None if label is None else jnp.concatenate([label, label])

  def ebm_loss(p):
    f = model.ebm.apply(
        {'params': p, 'batch_stats': new_stats},
        jnp.concatenate([y_data, y_k]), model.net_input[:-1],
        jnp.concatenate([t, t]) - 1, False, both_labels, method=level_energy)
    f_pos, f_neg = f[:batch_size], f[batch_size:]
    loss = jnp.mean(weight * (f_neg - f_pos))
    return loss, (f_pos, f_neg)

  (loss, (f_pos, f_neg)), grads['ebm'] = jax.value_and_grad(
      ebm_loss, has_aux=True)(params['ebm'])
  metrics.update(ebm_loss=loss, f_data=jnp.mean(f_pos),
                 f_sample=jnp.mean(f_neg), energy_gap=jnp.mean(f_pos - f_neg),
                 chain_grad_norm=jnp.mean(info.grad_norm))
  if model.initializer is not None:
    diff = y0 - y_k
    metrics['init_loss'] = jnp.mean(sq_norm(diff))
    grads['init'], = init_vjp(2.0 * diff / batch_size)
  dist = jnp.sqrt(sq_norm(y_k - y0))
  metrics['refine_dist'] = jnp.mean(dist)
  metrics.update(per_level_means(dist, t, model.num_levels, 'refine_dist'))
  return grads, {'ebm': new_stats}, metrics


def per_level_means(values: jax.Array, t: jax.Array, num_levels: int,
                    name: str) -> Dict[str, jax.Array]:
  """``{f'{name}_{l}': mean of values[t == l]}`` for ``l = 1..num_levels``.

  The train step draws one level per example, so each level's mean is over
  the examples that drew it (about ``B / T``); a level no example drew gives
  0 (the metrics must stay finite: a non-finite metric stops the run).
  """
  onehot = (t[:, None] == jnp.arange(1, num_levels + 1)).astype(values.dtype)
  sums = onehot.T @ values
  counts = jnp.sum(onehot, axis=0)
  means = sums / jnp.maximum(counts, 1.0)
  return {f'{name}_{l}': means[l - 1] for l in range(1, num_levels + 1)}


def _has_dropout(module: nn.Module) -> bool:
  return float(getattr(module, 'dropout', 0.0) or 0.0) > 0.0
