"""Latent-space flow prior with a top-down generator (docs/algorithms.md).

Model: ``z ~ p_alpha`` (a :class:`coopjax.flows.DenseFlow`, or ``N(0, I)`` for
the Gaussian-prior ablation), ``x = g_beta(z) + sigma * eps``. Every function
is pure in ``(params, inputs, keys)`` with ``params = {'gen': ..., 'prior':
...}`` (no ``'prior'`` entry for the Gaussian prior).

Observed pixels: a boolean ``mask`` (True = observed) enters the likelihood,
so unobserved pixels contribute nothing; in training batches, NaN pixels are
the unobserved ones (recovery of corrupted images without supervision).

Inference is K short-run Langevin steps (:func:`coopjax.samplers.langevin.langevin`) on
the posterior from ``z_0 ~ N(0, I)``::

    z <- z + (s^2/2) grad_z [log p_alpha(z) - ||m * (x - g(z))||^2 / (2 sigma^2)] + s eps

(:func:`refine`), and learning maximises ``log p(x | sg(z_K))`` for ``g`` and
``log p_alpha(sg(z_K))`` for the prior (:mod:`coopjax.latent_flow.losses`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from coopjax.samplers import langevin as langevin_lib
from coopjax.flows import normal_log_prob
from coopjax.rng import example_keys, per_example_normal, split_each

Params = Any


@dataclasses.dataclass(frozen=True)
class LatentFlowModel:
  """The generator, the prior and the inference settings.

  Attributes:
    generator: module ``g(z)``, ``[B, D] -> [B, H, W, C]``.
    prior: a flow module with ``log_prob`` and ``sample`` (DenseFlow), or
      None for the ``N(0, I)`` prior.
    latent_dim: ``D``.
    sigma: observation noise standard deviation.
    n_steps: K, posterior Langevin steps during training.
    step_size: Langevin step size ``s``.
  """
  generator: nn.Module
  prior: Optional[nn.Module]
  latent_dim: int
  sigma: float = 0.3
  n_steps: int = 20
  step_size: float = 0.1


def _flat(a: jax.Array) -> jax.Array:
  return a.reshape(a.shape[0], -1)


def _full_mask(x: jax.Array, mask: Optional[jax.Array]) -> jax.Array:
  """``mask`` broadcast to ``x`` as float (all ones if None)."""
  if mask is None:
    return jnp.ones_like(x)
  return jnp.broadcast_to(jnp.asarray(mask, x.dtype), x.shape)


def prior_log_prob(model: LatentFlowModel, prior_params: Params,
                   z: jax.Array) -> jax.Array:
  """``log p_alpha(z)``, ``[B]`` (exact, normalised)."""
  if model.prior is None:
    return normal_log_prob(z)
  return model.prior.apply({'params': prior_params}, z,
                           method=model.prior.log_prob)


def squared_error(model: LatentFlowModel, gen_params: Params, z: jax.Array,
                  x: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
  """``||m * (x - g(z))||^2`` per example, ``[B]``; masked pixels add 0."""
  diff = x - model.generator.apply({'params': gen_params}, z)
  m = _full_mask(x, mask)
  return jnp.sum(_flat(jnp.where(m > 0, diff, 0.0) ** 2), axis=-1)


def log_likelihood(model: LatentFlowModel, gen_params: Params, z: jax.Array,
                   x: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
  """``log N(x_obs; g(z)_obs, sigma^2 I)`` over the observed pixels, ``[B]``."""
  n_obs = jnp.sum(_flat(_full_mask(x, mask)), axis=-1)
  return (-squared_error(model, gen_params, z, x, mask) /
          (2.0 * model.sigma ** 2) -
          0.5 * n_obs * math.log(2.0 * math.pi * model.sigma ** 2))


def log_joint(model: LatentFlowModel, params: Dict[str, Params], z: jax.Array,
              x: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
  """``log p(x_obs, z) = log p(x_obs | z) + log p_alpha(z)``, ``[B]``.

  Up to ``log p(x_obs)`` (constant in ``z``) this is the posterior
  log-density the Langevin inference samples.
  """
  return (log_likelihood(model, params['gen'], z, x, mask) +
          prior_log_prob(model, params.get('prior'), z))


def _posterior_log_prob(model: LatentFlowModel):
  """``log p(z | x)`` up to a constant, as a ``log_prob(z, *args)`` for
  :func:`coopjax.samplers.langevin.langevin`."""

  def log_prob(z, params, x, mask):
    return (prior_log_prob(model, params.get('prior'), z) -
            squared_error(model, params['gen'], z, x, mask) /
            (2.0 * model.sigma ** 2))

  return log_prob


def refine(model: LatentFlowModel, params: Dict[str, Params], x: jax.Array,
          keys: jax.Array, mask: Optional[jax.Array] = None,
          n_steps: Optional[int] = None, noise_scale: float = 1.0,
          z0: Optional[jax.Array] = None
          ) -> Tuple[jax.Array, langevin_lib.LangevinInfo]:
  """Short-run posterior Langevin from ``z_0 ~ N(0, I)`` (or ``z0``).

  Args:
    model: the model.
    params: ``{'gen': ..., ['prior': ...]}``.
    x: ``[B, H, W, C]`` observations (values at unobserved pixels ignored,
      but must be finite).
    keys: ``[B]`` per-example keys (start and chain noise).
    mask: optional boolean, broadcastable to ``x``; True = observed.
    n_steps: steps (default ``model.n_steps``).
    noise_scale: 1 for Langevin, 0 for gradient ascent (reconstruction).
    z0: optional ``[B, D]`` start instead of the ``N(0, I)`` draw.

  Returns:
    ``(z, info)``: ``[B, D]`` latents and the chain's diagnostics.
  """
  k_start, k_chain = split_each(keys, 2)
  if z0 is None:
    z0 = per_example_normal(k_start, (model.latent_dim,), x.dtype)
  m = _full_mask(x, mask)
  n_steps = model.n_steps if n_steps is None else n_steps
  return langevin_lib.langevin(
      _posterior_log_prob(model), z0, k_chain, n_steps=n_steps,
      step_size=model.step_size, noise_scale=noise_scale,
      args=(params, x, m))

def sample_prior(model: LatentFlowModel, prior_params: Params, key: jax.Array,
                 num: int, temperature: float = 1.0,
                 start: Any = 0) -> jax.Array:
  """``[num, D]`` latents from the prior (``num`` static).

  Latent ``i`` is ``prior^{-1}(temperature * eps_i)`` with ``eps_i`` drawn
  from ``fold_in(key, start + i)``: it does not depend on how many latents
  are drawn at once or on which device.
  """
  eps = temperature * per_example_normal(example_keys(key, start, num),
                                         (model.latent_dim,))
  if model.prior is None:
    return eps
  return model.prior.apply({'params': prior_params}, eps,
                           method=model.prior.inverse)


def generate(model: LatentFlowModel, params: Dict[str, Params],
             key: jax.Array, num: int, temperature: float = 1.0,
             start: Any = 0) -> Tuple[jax.Array, jax.Array]:
  """``(x, z)``: ``z`` from the prior (:func:`sample_prior`), ``x = g(z)``
  (the mean image)."""
  z = sample_prior(model, params.get('prior'), key, num, temperature, start)
  return model.generator.apply({'params': params['gen']}, z), z


def reconstruct(model: LatentFlowModel, params: Dict[str, Params],
                x: jax.Array, keys: jax.Array, n_steps: int,
                mask: Optional[jax.Array] = None
                ) -> Tuple[jax.Array, jax.Array]:
  """``(g(z*), z*)`` with ``z*`` from ``n_steps`` noise-free posterior steps.

  With ``mask``, only the observed pixels inform ``z*``.
  """
  z, _ = refine(model, params, x, keys, mask, n_steps, noise_scale=0.0)
  return model.generator.apply({'params': params['gen']}, z), z


def inpaint(model: LatentFlowModel, params: Dict[str, Params], x: jax.Array,
            mask: jax.Array, keys: jax.Array, n_steps: int) -> jax.Array:
  """Fills the unobserved pixels (``mask`` False) with ``g(z*)``, ``z*``
  inferred from the observed ones; observed pixels are returned unchanged."""
  x_hat, _ = reconstruct(model, params, x, keys, n_steps, mask)
  return jnp.where(_full_mask(x, mask) > 0, x, x_hat)


def anomaly_terms(model: LatentFlowModel, params: Dict[str, Params],
                  x: jax.Array, keys: jax.Array,
                  n_steps: int) -> Tuple[jax.Array, jax.Array]:
  """``(||x - g(z*)||^2 / (2 sigma^2), -log p_alpha(z*))``, each ``[B]``, with
  ``z*`` from :func:`reconstruct`."""
  x_hat, z = reconstruct(model, params, x, keys, n_steps)
  err = jnp.sum(_flat((x - x_hat) ** 2), axis=-1) / (2.0 * model.sigma ** 2)
  return err, -prior_log_prob(model, params.get('prior'), z)


def anomaly_score(model: LatentFlowModel, params: Dict[str, Params],
                  x: jax.Array, keys: jax.Array, n_steps: int) -> jax.Array:
  """Reconstruction error plus negative log prior, ``[B]`` (higher = more
  anomalous): the sum of :func:`anomaly_terms`."""
  err, neg_log_prior = anomaly_terms(model, params, x, keys, n_steps)
  return err + neg_log_prior
