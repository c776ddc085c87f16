"""The latent flow prior's losses and one device's gradients for a batch."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import jax
import jax.numpy as jnp

from coopjax.latent_flow.model import (LatentFlowModel, Params,
                                       prior_log_prob, refine, squared_error)

def generator_loss(model: LatentFlowModel, gen_params: Params, z: jax.Array,
                   x: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
  """``mean_B ||m * (x - g(z))||^2 / (2 sigma^2)`` (minimised)."""
  return jnp.mean(squared_error(model, gen_params, z, x, mask)) / (
      2.0 * model.sigma ** 2)


def prior_loss(model: LatentFlowModel, prior_params: Params,
               z: jax.Array) -> jax.Array:
  """``-mean_B log p_alpha(z)`` (minimised; constant for the Gaussian prior)."""
  return -jnp.mean(prior_log_prob(model, prior_params, z))


def observed(x: jax.Array) -> Tuple[jax.Array, jax.Array]:
  """``(x with NaNs zeroed, mask)``: NaN pixels are the unobserved ones."""
  mask = jnp.isfinite(x)
  return jnp.where(mask, x, 0.0), mask


def loss_and_grads(model: LatentFlowModel, params: Dict[str, Params],
                   stats: Dict[str, Params], batch: Any, keys: jax.Array):
  """One learning step's gradients on a (per-device) batch.

  Infers ``z_K`` by ``model.n_steps`` posterior Langevin steps, then takes the
  gradients of :func:`generator_loss` and :func:`prior_loss` at ``sg(z_K)``.

  Args:
    model: the model.
    params: ``{'gen': ..., ['prior': ...]}``.
    stats: unused (no statistics); returned unchanged.
    batch: ``{'x': [B, H, W, C]}``; NaN pixels are unobserved.
    keys: ``[B]`` per-example keys.

  Returns:
    ``(grads, stats, metrics)``; gradients of per-device means.
  """
  x, mask = observed(batch['x'])
  z, info = refine(model, params, x, keys, mask)
  z = jax.lax.stop_gradient(z)
  grads = {}
  gen_loss, grads['gen'] = jax.value_and_grad(
      lambda p: generator_loss(model, p, z, x, mask))(params['gen'])
  n_obs = jnp.maximum(jnp.sum(mask), 1)
  metrics = {
      'gen_loss': gen_loss,
      'mse': 2.0 * model.sigma ** 2 * gen_loss * x.shape[0] / n_obs,
      'neg_log_prior': -jnp.mean(prior_log_prob(model, params.get('prior'),
                                                z)),
      'z_norm': jnp.mean(jnp.sqrt(jnp.sum(z ** 2, axis=-1))),
      'chain_grad_norm': jnp.mean(info.grad_norm),
  }
  if model.prior is not None:
    metrics['prior_loss'], grads['prior'] = jax.value_and_grad(
        lambda p: prior_loss(model, p, z))(params['prior'])
  return grads, stats, metrics
