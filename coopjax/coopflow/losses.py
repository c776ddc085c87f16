"""CoopFlow's losses and one device's gradients for a batch.

The EBM learns contrastively (data against the revised samples), the flow by
maximum likelihood on the revised samples, re-binned for discrete data
(:func:`dequantize`). CoopFlow(pre) first trains the flow alone by maximum
likelihood on the data.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Union

import jax
import jax.numpy as jnp

from coopjax import rng
from coopjax.coopflow.model import (CoopFlowModel, Params, energy,
                                    flow_log_prob, propose, refine)
from coopjax.flows import uniform_dequantize

# The metrics of a cooperative update (zeros while the flow pretrains).
COOPERATIVE_METRICS = ('ebm_loss', 'flow_loss', 'flow_nll_per_dim',
                       'revision_dist', 'grad_norm_start', 'f_data',
                       'f_sample')

def ebm_loss(model: CoopFlowModel, ebm_params: Params, x_data: jax.Array,
             x_sample: jax.Array) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """``mean f(sg(x_sample)) - mean f(x_data)`` (plus ``model.energy_l2``
  times the mean squared energies) and the two means."""
  f_data = energy(model, ebm_params, x_data)
  f_sample = energy(model, ebm_params, jax.lax.stop_gradient(x_sample))
  loss = jnp.mean(f_sample) - jnp.mean(f_data)
  if model.energy_l2:
    loss = loss + model.energy_l2 * (jnp.mean(f_data ** 2) +
                                     jnp.mean(f_sample ** 2))
  return loss, {'f_data': jnp.mean(f_data), 'f_sample': jnp.mean(f_sample)}


def dequantize(model: CoopFlowModel, keys: jax.Array, x: jax.Array,
               snap: bool) -> jax.Array:
  """What the flow's maximum likelihood sees of ``x``.

  With ``model.dequant_bins`` set, data (``snap=True``) are dequantised: each
  level moves uniformly into its bin (:func:`coopjax.flows.uniform_dequantize`,
  per-example ``keys``). Revised samples (``snap=False``) already live in the
  continuous space of dequantised data; they are re-binned (uniform within
  their own bin) if ``model.dequant_revised``, so that values many samples
  share, such as the clipped box edge, are not point masses. Continuous data
  (``dequant_bins=0``) pass unchanged.

  The reference code dequantises every input of its flow (data and revised
  samples alike) with ``(255 x + u) / 256`` in [0, 1]; at 256 levels that
  differs from re-binning by a shrink of 1/256, but at the digits' 17 levels
  the shrink is 1/17 per pass: a pretrained digits flow fitted to its own
  samples (lr 1e-4, 100 steps) went from -0.61 to +3.1 nats/dim on test data
  with the shrink, to -0.29 with re-binning.
  """
  if not model.dequant_bins or not (snap or model.dequant_revised):
    return x
  return jax.vmap(lambda k, a: uniform_dequantize(
      k, a, model.dequant_bins, snap=snap))(keys, x)


def flow_loss(model: CoopFlowModel, flow_params: Params, x: jax.Array,
              keys: Optional[jax.Array] = None) -> jax.Array:
  """Maximum likelihood: ``-mean log p_flow(sg(x))`` (a stochastic flow,
  Flow++, in training mode with its noise from the per-example ``keys``)."""
  return -jnp.mean(flow_log_prob(model, flow_params, jax.lax.stop_gradient(x),
                                 keys, train=keys is not None))


def nll_per_dim(model: CoopFlowModel, nll: jax.Array) -> jax.Array:
  """Per-dimension negative log-likelihood in nats (for reporting)."""
  return nll / model.latent_dim


def _pretrain_grads(model, params, x, k_deq):
  """Flow-only maximum likelihood on the (dequantised) data."""
  x_flow = dequantize(model, k_deq, x, snap=True)
  k_flow = rng.split_each(k_deq, 2)[1]
  nll, g = jax.value_and_grad(lambda p: flow_loss(model, p, x_flow, k_flow))(
      params['flow'])
  return g, {'flow_loss': nll, 'flow_nll_per_dim': nll_per_dim(model, nll)}


def _cooperative_grads(model, params, x, k_z, k_chain, k_deq):
  """Both networks' gradients for one cooperative iteration."""
  z = rng.per_example_normal(k_z, (model.latent_dim,), x.dtype)
  x0 = jax.lax.stop_gradient(propose(model, params['flow'], z))
  x_k, info = refine(model, params['ebm'], x0, k_chain)
  (e_loss, e_aux), g_ebm = jax.value_and_grad(
      lambda p: ebm_loss(model, p, x, x_k), has_aux=True)(params['ebm'])
  x_k_flow = dequantize(model, k_deq, x_k, snap=False)
  k_flow = rng.split_each(k_deq, 2)[1]
  f_loss, g_flow = jax.value_and_grad(
      lambda p: flow_loss(model, p, x_k_flow, k_flow))(params['flow'])
  moved = jnp.sqrt(jnp.sum((x_k - x0).reshape(x.shape[0], -1) ** 2, axis=-1))
  metrics = {'ebm_loss': e_loss, 'flow_loss': f_loss,
             'flow_nll_per_dim': nll_per_dim(model, f_loss),
             'revision_dist': jnp.mean(moved),
             'grad_norm_start': info.grad_norm[0], **e_aux}
  assert set(metrics) == set(COOPERATIVE_METRICS), sorted(metrics)
  return {'ebm': g_ebm, 'flow': g_flow}, metrics


def loss_and_grads(model: CoopFlowModel, params: Dict[str, Params],
                   stats: Dict[str, Any], batch: Dict[str, jax.Array],
                   keys: jax.Array,
                   pretrain_flow: Union[bool, jax.Array] = False):
  """One device's CoopFlow gradients for ``batch['x']`` and per-example ``keys``.

  Args:
    model: the model.
    params: ``{'ebm': ..., 'flow': ...}``.
    stats: mutable statistics (none; passed through).
    batch: ``{'x': [B, ...]}`` data in [-1, 1].
    keys: ``[B]`` per-example keys.
    pretrain_flow: train only the flow, by maximum likelihood on the
      (dequantised) data. A Python bool picks the computation when tracing
      (``True``: only ``grads['flow']`` is returned). A traced boolean
      scalar (CoopFlow(pre) in one run: ``step < pretrain_steps``) chooses at
      run time with ``lax.cond``; then both networks always get gradients,
      the EBM's being zero while pretraining (Adam, from zero moments, then
      leaves it unchanged), and ``metrics['pretraining']`` says which ran
      (the cooperative metrics read 0 while it is 1).

  Returns:
    ``(grads, stats, metrics)`` in the form
    :func:`coopjax.trainer.parallel.make_train_step` expects.
  """
  x = batch['x']
  k_z, k_chain, k_deq = rng.split_each(keys, 3)
  if isinstance(pretrain_flow, bool):
    if pretrain_flow:
      g_flow, metrics = _pretrain_grads(model, params, x, k_deq)
      return {'flow': g_flow}, stats, metrics
    grads, metrics = _cooperative_grads(model, params, x, k_z, k_chain, k_deq)
    return grads, stats, metrics

  def cooperative(_):
    grads, metrics = _cooperative_grads(model, params, x, k_z, k_chain, k_deq)
    return grads, {**metrics, 'pretraining': jnp.zeros((), x.dtype)}

  def pretrain(_):
    g_flow, metrics = _pretrain_grads(model, params, x, k_deq)
    # The cooperative metrics read 0; derived from a per-device value so
    # that under shard_map they vary over devices as the other branch's do.
    zero = jnp.zeros_like(metrics['flow_loss'])
    out = {name: zero for name in COOPERATIVE_METRICS}
    out.update(metrics, pretraining=jnp.ones((), x.dtype))
    grads = {'ebm': jax.tree_util.tree_map(jnp.zeros_like, params['ebm']),
             'flow': g_flow}
    return grads, out

  grads, metrics = jax.lax.cond(pretrain_flow, pretrain, cooperative, None)
  return grads, stats, metrics
