"""CoopFlow (ICLR 2022) as pure functions: a normalizing flow proposes, a short
Langevin flow on an EBM revises, both learn (docs/algorithms.md, CoopFlow).

One iteration, for data ``x`` and per-example keys::

    z ~ N(0, I);  x_0 = flow^{-1}(z)
    x_K = K Langevin steps on f_theta from sg(x_0)        (refine)
    EBM:  minimise  mean f_theta(sg(x_K)) - mean f_theta(x)
    flow: minimise -mean log p_flow(deq(sg(x_K)))

where ``deq`` re-bins discrete data's revised samples, each uniform within
its quantisation bin (:func:`coopjax.coopflow.losses.dequantize`; the identity for continuous data).

The reference chain has no noise, the drift ``(s^2 / 2) grad f`` clipped to
+-0.1 per coordinate and ``x`` clipped to [-1, 1]; every option is a field of
:class:`CoopFlowModel`. This module holds the model, the flow's proposal and
the chain (:func:`refine`) and sampling; the losses are in
:mod:`coopjax.coopflow.losses`, reconstruction and interpolation in
:mod:`coopjax.coopflow.inference`.

The EBM is any Flax module called as ``ebm.apply({'params': p}, x, logsnr)``
returning ``[B]`` (the ``logsnr`` argument is a zero vector: CoopFlow's EBM is
unconditional, and this lets the 2-D model reuse the MLP energy). The flow is
a :class:`coopjax.flows.DenseFlow`, :class:`coopjax.flows.GlowFlow` or
:class:`coopjax.flows.flowpp.FlowPlusPlus`. Flow++ is stochastic (variational
dequantisation, dropout): :func:`flow_log_prob` and :func:`encode` then take
per-example keys for its noise (zeros without keys) and a ``train`` flag for
its dropout.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from coopjax.rng import example_keys, per_example_normal, split_each
from coopjax.samplers.langevin import LangevinInfo, langevin

Params = Any


@dataclasses.dataclass(frozen=True)
class CoopFlowModel:
  """The two networks and the Langevin settings (hashable: a jit static).

  Attributes:
    ebm: the energy network ``f_theta`` (higher = more likely).
    flow: the normalizing flow (``forward``, ``inverse``, ``log_prob``).
    example_shape: shape of one example, e.g. ``(2,)`` or ``(8, 8, 1)``.
    n_steps: K, Langevin steps per revision (30 in the reference).
    step_size: Langevin step size s in training (0.03).
    sample_step_size: step size of the chains that draw samples
      (:func:`sample`; the authors' FID samples use 0.04); None: ``step_size``.
    noise_scale: multiplies the chain's noise (0: the reference, no noise).
    clip_drift: per-coordinate bound of the drift (0.1), None for none.
    clip_x: box the chain's state is clipped to ((-1, 1)), None for none.
    dequant_bins: quantisation levels of the data for the flow's maximum
      likelihood on data (pretraining; 256 for 8-bit images, 0 for
      continuous data).
    dequant_revised: with ``dequant_bins`` set, re-bin the revised samples
      before the flow's maximum likelihood (:func:`dequantize`). Without it,
      pixels the chain clipped to the box edge form point masses whose
      likelihood the flow chases: on the digits, CoopFlow(pre)'s flow NLL fell
      to -0.94 nats/dim while the Frechet distance rose from 47 to 84.
    energy_l2: weight of ``mean(f(x_data)^2) + mean(f(x_K)^2)`` added to the
      EBM loss (0 in the reference; keeps the energy's scale bounded where
      the contrastive loss alone lets it run away, as on 2-D data).
  """
  ebm: nn.Module
  flow: nn.Module
  example_shape: Tuple[int, ...]
  n_steps: int = 30
  step_size: float = 0.03
  sample_step_size: Optional[float] = None
  noise_scale: float = 0.0
  clip_drift: Optional[float] = 0.1
  clip_x: Optional[Tuple[float, float]] = (-1.0, 1.0)
  dequant_bins: int = 0
  energy_l2: float = 0.0
  dequant_revised: bool = True

  @property
  def latent_dim(self) -> int:
    return math.prod(self.example_shape)

  def log_prob(self, x: jax.Array, ebm_params: Params) -> jax.Array:
    """The EBM's unnormalised log-density ``f_theta(x)``, ``[B]``."""
    return energy(self, ebm_params, x)


def energy(model: CoopFlowModel, ebm_params: Params, x: jax.Array) -> jax.Array:
  """``f_theta(x)``, ``[B]``."""
  logsnr = jnp.zeros((x.shape[0],), x.dtype)
  return model.ebm.apply({'params': ebm_params}, x, logsnr)


def propose(model: CoopFlowModel, flow_params: Params,
            z: jax.Array) -> jax.Array:
  """``x_0 = flow^{-1}(z)`` for flat latents ``z`` ``[B, latent_dim]``.

  The inverse of an affine coupling divides by ``sigmoid(.)``, which can
  overflow for latents far in the tails; with ``model.clip_x`` set, such
  proposals are mapped into the box (inf to its edge, NaN to its centre) rather
  than poisoning the chain and the EBM loss.
  """
  x = model.flow.apply({'params': flow_params}, z,
                       method=type(model.flow).inverse)
  if model.clip_x is None:
    return x
  lo, hi = model.clip_x
  return jnp.clip(jnp.nan_to_num(x, nan=0.5 * (lo + hi), posinf=hi,
                                 neginf=lo), lo, hi)


def _flow_apply(model: CoopFlowModel, flow_params: Params, x: jax.Array,
                method: str, keys: Optional[jax.Array], train: bool):
  """``flow.<method>(x)``; a stochastic flow gets its dequantisation noise
  from the per-example ``keys`` (zeros if None) and, with ``train``, dropout
  keyed by ``keys[0]``."""
  fn = getattr(type(model.flow), method)
  if not getattr(model.flow, 'stochastic', False):
    return model.flow.apply({'params': flow_params}, x, method=fn)
  if keys is None:
    noise = jnp.zeros_like(x)
  else:
    noise = per_example_normal(keys, x.shape[1:], x.dtype)
  rngs = {'dropout': jax.random.fold_in(keys[0], 1)} if (
      train and keys is not None) else {}
  return model.flow.apply({'params': flow_params}, x, noise,
                          not (train and keys is not None), method=fn,
                          rngs=rngs)


def encode(model: CoopFlowModel, flow_params: Params, x: jax.Array,
           keys: Optional[jax.Array] = None) -> jax.Array:
  """The flow latent ``z = flow(x)``, ``[B, latent_dim]``."""
  z, _ = _flow_apply(model, flow_params, x, 'forward', keys, False)
  return z


def flow_log_prob(model: CoopFlowModel, flow_params: Params, x: jax.Array,
                  keys: Optional[jax.Array] = None,
                  train: bool = False) -> jax.Array:
  """``log p_flow(x)``, ``[B]`` (nats; exact, or Flow++'s dequantised lower
  bound with noise from ``keys``)."""
  return _flow_apply(model, flow_params, x, 'log_prob', keys, train)


def refine(model: CoopFlowModel, ebm_params: Params, x0: jax.Array,
           key: jax.Array, n_steps: Optional[int] = None,
           clamp: Optional[Tuple[jax.Array, jax.Array]] = None,
           step_size: Optional[float] = None
           ) -> Tuple[jax.Array, LangevinInfo]:
  """The Langevin flow: ``n_steps`` (default K) steps on ``f_theta`` from ``x0``.

  Args:
    model: the model (its Langevin settings are used).
    ebm_params: EBM parameters.
    x0: ``[B, ...]`` starting points (the flow's proposals).
    key: a key or ``[B]`` per-example keys for the chain's noise.
    n_steps: number of steps; default ``model.n_steps``.
    clamp: optional ``(mask, values)``: coordinates where ``mask`` holds are
      reset to ``values`` after every step.
    step_size: the step size; default ``model.step_size``.

  Returns:
    ``(x_K, info)`` as :func:`coopjax.samplers.langevin.langevin` returns them.
  """
  return langevin(model.log_prob, x0, key,
                  n_steps=model.n_steps if n_steps is None else n_steps,
                  step_size=model.step_size if step_size is None
                  else step_size, noise_scale=model.noise_scale,
                  clip_drift=model.clip_drift, clip_x=model.clip_x,
                  clamp=clamp, args=(ebm_params,))


def sample(model: CoopFlowModel, params: Dict[str, Params], key: jax.Array,
           num: int, n_steps: Optional[int] = None,
           temperature: float = 1.0, start: Any = 0
           ) -> Tuple[jax.Array, jax.Array]:
  """Draws ``num`` samples: flow proposal then the Langevin revision.

  Sample ``i`` draws its latent and its chain's noise from
  ``fold_in(key, start + i)``, so samples do not depend on how many are
  drawn at once or on which device. The chain's step size is
  ``model.sample_step_size`` (or ``model.step_size``).

  Returns:
    ``(x_K, x_0)``: the revised samples and the flow's proposals.
  """
  k_z, k_chain = split_each(example_keys(key, start, num), 2)
  z = temperature * per_example_normal(k_z, (model.latent_dim,))
  x0 = propose(model, params['flow'], z)
  x_k, _ = refine(model, params['ebm'], x0, k_chain, n_steps,
                  step_size=model.sample_step_size)
  return x_k, x0


def generate(model: CoopFlowModel, params: Dict[str, Params], z: jax.Array,
             key: jax.Array, n_steps: Optional[int] = None) -> jax.Array:
  """``x_K`` from latents ``z``: the flow then the Langevin chain (differentiable)."""
  x_k, _ = refine(model, params['ebm'], propose(model, params['flow'], z),
                  key, n_steps)
  return x_k
