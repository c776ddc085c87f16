"""CoopFlow's inference tasks as pure functions: reconstruction (and
inpainting) by gradient descent on the chain's start ``x_0`` (the authors')
or by optimising the flow latent through the unrolled chain, and
interpolation between images in the flow's latent space."""

from __future__ import annotations

import dataclasses

from typing import Dict, Optional

import jax
import jax.numpy as jnp
import optax

from coopjax.coopflow.model import (CoopFlowModel, Params, encode, generate,
                                    propose, refine)
from coopjax.data import masks

def reconstruct(model: CoopFlowModel, params: Dict[str, Params],
                target: jax.Array, z_init: jax.Array, key: jax.Array, *,
                num_iters: int, lr: float,
                mask: Optional[jax.Array] = None,
                n_steps: Optional[int] = None):
  """Finds latents whose revised samples match ``target`` (Adam on ``z``).

  The loss is the per-pixel MSE between ``generate(z)`` (flow, then the
  K-step chain, differentiated through the unrolled chain) and ``target``,
  over the pixels where ``mask`` holds (inpainting: the known ones).

  Args:
    model: the model.
    params: ``{'ebm': ..., 'flow': ...}``.
    target: ``[B, ...]`` images to reconstruct.
    z_init: ``[B, latent_dim]`` starting latents.
    key: the chain's key (the same at every iteration).
    num_iters: optimisation steps.
    lr: Adam learning rate on ``z``.
    mask: optional boolean mask broadcastable to ``target``.
    n_steps: Langevin steps; default ``model.n_steps``.

  Returns:
    ``(z, x, losses)``: the final latents, ``generate(z)`` and the loss
    before each iteration and after the last (``[num_iters + 1]``).
  """
  if num_iters < 0:
    raise ValueError(f'num_iters must be >= 0, got {num_iters}.')

  def loss_fn(z):
    return masks.masked_mse(generate(model, params, z, key, n_steps), target,
                            mask)

  opt = optax.adam(lr)

  def step(carry, _):
    z, opt_state = carry
    loss, g = jax.value_and_grad(loss_fn)(z)
    updates, opt_state = opt.update(g, opt_state, z)
    return (optax.apply_updates(z, updates), opt_state), loss

  (z, _), losses = jax.lax.scan(step, (z_init, opt.init(z_init)), None,
                                length=num_iters)
  x = generate(model, params, z, key, n_steps)
  final = masks.masked_mse(x, target, mask)
  return z, x, jnp.concatenate([losses, final[None]])


def noise_free(model: CoopFlowModel) -> CoopFlowModel:
  """The model with the authors' task chain: no noise, no drift clip, no box
  (their ``ebm_sample`` in the reconstruction and interpolation scripts)."""
  return dataclasses.replace(model, clip_drift=None, clip_x=None,
                             noise_scale=0.0)


def interpolate_latents(model: CoopFlowModel, params: Dict[str, Params],
                        z_a: jax.Array, z_b: jax.Array, num: int,
                        key: Optional[jax.Array] = None,
                        n_steps: Optional[int] = None) -> jax.Array:
  """Images along the straight line from ``z_a`` to ``z_b`` in latent space.

  Args:
    model: the model (pass ``noise_free(model)`` for the authors' revision).
    params: ``{'ebm': ..., 'flow': ...}``.
    z_a, z_b: ``[B, latent_dim]`` the two end latents (pairs).
    num: points on the line, ends included (>= 2).
    key: if given, every point is also revised by the Langevin chain;
      otherwise it is the flow's inverse only.
    n_steps: Langevin steps for the revision; default ``model.n_steps``.

  Returns:
    ``[B, num, ...]`` images, ``z_a``'s end first.
  """
  if num < 2:
    raise ValueError(f'interpolate needs num >= 2 points, got {num}.')
  w = jnp.linspace(0.0, 1.0, num)[None, :, None]
  z = ((1.0 - w) * z_a[:, None] + w * z_b[:, None]).reshape(-1, z_a.shape[-1])
  x = propose(model, params['flow'], z)
  if key is not None:
    x, _ = refine(model, params['ebm'], x, key, n_steps)
  return x.reshape((z_a.shape[0], num) + x.shape[1:])


def interpolate(model: CoopFlowModel, params: Dict[str, Params],
                x_a: jax.Array, x_b: jax.Array, num: int,
                key: Optional[jax.Array] = None,
                n_steps: Optional[int] = None) -> jax.Array:
  """Images along the line between ``flow(x_a)`` and ``flow(x_b)`` in z space.

  Without ``key`` the ends reproduce ``x_a`` and ``x_b`` (the flow's inverse
  of its forward); see :func:`interpolate_latents` for the arguments.
  """
  z_a = encode(model, params['flow'], x_a)
  z_b = encode(model, params['flow'], x_b)
  return interpolate_latents(model, params, z_a, z_b, num, key, n_steps)


def reconstruct_x0(model: CoopFlowModel, params: Dict[str, Params],
                   target: jax.Array, x0: jax.Array, key: jax.Array, *,
                   num_iters: int, lr: float, decay: float = 1.0,
                   mask: Optional[jax.Array] = None,
                   n_steps: Optional[int] = None):
  """The authors' reconstruction: gradient descent on the chain's start.

  ``x_0 <- clip(x_0 - lr decay^j grad_{x_0} sum_m (x_K(x_0) - target)^2,
  -1, 1)`` for ``j = 0 .. num_iters - 1``, where ``x_K`` is the K-step chain
  without clipping (no drift clip, no box, no noise) and the sum runs over
  the pixels where ``mask`` holds (inpainting: lr 0.03, decay 0.99).

  Returns:
    ``(x_0, x_K, losses)``: the final start, its chain's end and the
    per-pixel MSE before each iteration and after the last.
  """
  if num_iters < 0:
    raise ValueError(f'num_iters must be >= 0, got {num_iters}.')
  free = noise_free(model)
  w = jnp.ones_like(target) if mask is None else jnp.broadcast_to(
      mask, target.shape).astype(target.dtype)

  def chain(x):
    return refine(free, params['ebm'], x, key, n_steps)[0]

  def step(x, j):
    x_k, pull = jax.vjp(chain, x)
    loss = masks.masked_mse(x_k, target, mask)
    (g,) = pull(2.0 * w * (x_k - target))
    x = jnp.clip(x - lr * decay ** j * g, -1.0, 1.0)
    return x, loss

  x0, losses = jax.lax.scan(step, x0, jnp.arange(num_iters, dtype=x0.dtype))
  x_k = chain(x0)
  final = masks.masked_mse(x_k, target, mask)
  return x0, x_k, jnp.concatenate([losses, final[None]])
