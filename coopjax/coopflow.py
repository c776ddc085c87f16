"""CoopFlow (ICLR 2022) as pure functions: a normalizing flow proposes, a short
Langevin flow on an EBM revises, both learn (ALGORITHMS.md section 2).

One iteration, for data ``x`` and per-example keys::

    z ~ N(0, I);  x_0 = flow^{-1}(z)
    x_K = K Langevin steps on f_theta from sg(x_0)        (coopjax.langevin)
    EBM:  minimise  mean f_theta(sg(x_K)) - mean f_theta(x)
    flow: minimise -mean log p_flow(deq(sg(x_K)))

where ``deq`` re-bins discrete data's revised samples, each uniform within
its quantisation bin (:func:`dequantize`; the identity for continuous data).

The reference chain has no noise, the drift ``(s^2 / 2) grad f`` clipped to
+-0.1 per coordinate and ``x`` clipped to [-1, 1]; every option is a field of
:class:`CoopFlowModel`. The tasks are pure functions too: :func:`sample`,
:func:`reconstruct` (optimise the latent through the unrolled chain, with an
optional mask: inpainting) and :func:`interpolate`.

The EBM is any Flax module called as ``ebm.apply({'params': p}, x, logsnr)``
returning ``[B]`` (the ``logsnr`` argument is a zero vector: CoopFlow's EBM is
unconditional, and this lets the 2-D model reuse the MLP energy). The flow is
a :class:`coopjax.flows.DenseFlow` or :class:`coopjax.flows.GlowFlow`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Optional, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from coopjax import masks, rng
from coopjax.flows import uniform_dequantize
from coopjax.langevin import LangevinInfo, langevin

Params = Any


@dataclasses.dataclass(frozen=True)
class CoopFlowModel:
  """The two networks and the Langevin settings (hashable: a jit static).

  Attributes:
    ebm: the energy network ``f_theta`` (higher = more likely).
    flow: the normalizing flow (``forward``, ``inverse``, ``log_prob``).
    example_shape: shape of one example, e.g. ``(2,)`` or ``(8, 8, 1)``.
    n_steps: K, Langevin steps per revision (30 in the reference).
    step_size: Langevin step size s (0.03).
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


def encode(model: CoopFlowModel, flow_params: Params,
           x: jax.Array) -> jax.Array:
  """The flow latent ``z = flow(x)``, ``[B, latent_dim]``."""
  z, _ = model.flow.apply({'params': flow_params}, x,
                          method=type(model.flow).forward)
  return z


def flow_log_prob(model: CoopFlowModel, flow_params: Params,
                  x: jax.Array) -> jax.Array:
  """Exact ``log p_flow(x)``, ``[B]`` (nats)."""
  return model.flow.apply({'params': flow_params}, x,
                          method=type(model.flow).log_prob)


def revise(model: CoopFlowModel, ebm_params: Params, x0: jax.Array,
           key: jax.Array, n_steps: Optional[int] = None,
           clamp: Optional[Tuple[jax.Array, jax.Array]] = None
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

  Returns:
    ``(x_K, info)`` as :func:`coopjax.langevin.langevin` returns them.
  """
  return langevin(model.log_prob, x0, key,
                  n_steps=model.n_steps if n_steps is None else n_steps,
                  step_size=model.step_size, noise_scale=model.noise_scale,
                  clip_drift=model.clip_drift, clip_x=model.clip_x,
                  clamp=clamp, args=(ebm_params,))


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


def flow_loss(model: CoopFlowModel, flow_params: Params,
              x: jax.Array) -> jax.Array:
  """Maximum likelihood: ``-mean log p_flow(sg(x))``."""
  return -jnp.mean(flow_log_prob(model, flow_params, jax.lax.stop_gradient(x)))


def nll_per_dim(model: CoopFlowModel, nll: jax.Array) -> jax.Array:
  """Per-dimension negative log-likelihood in nats (for reporting)."""
  return nll / model.latent_dim


def _pretrain_grads(model, params, x, k_deq):
  """Flow-only maximum likelihood on the (dequantised) data."""
  x_flow = dequantize(model, k_deq, x, snap=True)
  nll, g = jax.value_and_grad(lambda p: flow_loss(model, p, x_flow))(
      params['flow'])
  return g, {'flow_loss': nll, 'flow_nll_per_dim': nll_per_dim(model, nll)}


def _cooperative_grads(model, params, x, k_z, k_chain, k_deq):
  """Both networks' gradients for one cooperative iteration."""
  z = rng.per_example_normal(k_z, (model.latent_dim,), x.dtype)
  x0 = jax.lax.stop_gradient(propose(model, params['flow'], z))
  x_k, info = revise(model, params['ebm'], x0, k_chain)
  (e_loss, e_aux), g_ebm = jax.value_and_grad(
      lambda p: ebm_loss(model, p, x, x_k), has_aux=True)(params['ebm'])
  x_k_flow = dequantize(model, k_deq, x_k, snap=False)
  f_loss, g_flow = jax.value_and_grad(
      lambda p: flow_loss(model, p, x_k_flow))(params['flow'])
  moved = jnp.sqrt(jnp.sum((x_k - x0).reshape(x.shape[0], -1) ** 2, axis=-1))
  metrics = {'ebm_loss': e_loss, 'flow_loss': f_loss,
             'flow_nll_per_dim': nll_per_dim(model, f_loss),
             'revision_dist': jnp.mean(moved),
             'grad_norm_start': info.grad_norm[0], **e_aux}
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
    :func:`coopjax.parallel.make_train_step` expects.
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
    # Zeros for the cooperative metrics, derived from a per-device value so
    # that under shard_map they vary over devices as the other branch's do.
    zero = jnp.zeros_like(metrics['flow_loss'])
    _, coop_metrics = jax.eval_shape(cooperative, None)
    out = {k: jnp.broadcast_to(zero, v.shape).astype(v.dtype)
           for k, v in coop_metrics.items()}
    out.update(metrics, pretraining=jnp.ones((), x.dtype))
    grads = {'ebm': jax.tree_util.tree_map(jnp.zeros_like, params['ebm']),
             'flow': g_flow}
    return grads, out

  grads, metrics = jax.lax.cond(pretrain_flow, pretrain, cooperative, None)
  return grads, stats, metrics


def sample(model: CoopFlowModel, params: Dict[str, Params], key: jax.Array,
           num: int, n_steps: Optional[int] = None,
           temperature: float = 1.0) -> Tuple[jax.Array, jax.Array]:
  """Draws ``num`` samples: flow proposal then the Langevin revision.

  Returns:
    ``(x_K, x_0)``: the revised samples and the flow's proposals.
  """
  k_z, k_chain = jax.random.split(key)
  z = temperature * jax.random.normal(k_z, (num, model.latent_dim))
  x0 = propose(model, params['flow'], z)
  x_k, _ = revise(model, params['ebm'], x0, k_chain, n_steps)
  return x_k, x0


def generate(model: CoopFlowModel, params: Dict[str, Params], z: jax.Array,
             key: jax.Array, n_steps: Optional[int] = None) -> jax.Array:
  """``x_K`` from latents ``z``: the flow then the Langevin chain (differentiable)."""
  x_k, _ = revise(model, params['ebm'], propose(model, params['flow'], z),
                  key, n_steps)
  return x_k


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


def interpolate(model: CoopFlowModel, params: Dict[str, Params],
                x_a: jax.Array, x_b: jax.Array, num: int,
                key: Optional[jax.Array] = None,
                n_steps: Optional[int] = None) -> jax.Array:
  """Images along the line between ``flow(x_a)`` and ``flow(x_b)`` in z space.

  Args:
    model: the model.
    params: ``{'ebm': ..., 'flow': ...}``.
    x_a, x_b: ``[B, ...]`` the two end images (pairs).
    num: points on the line, ends included (>= 2).
    key: if given, every point is also revised by the Langevin chain;
      otherwise it is the flow's inverse only, whose ends reproduce
      ``x_a`` and ``x_b``.
    n_steps: Langevin steps for the revision; default ``model.n_steps``.

  Returns:
    ``[B, num, ...]`` images, ``x_a``'s end first.
  """
  if num < 2:
    raise ValueError(f'interpolate needs num >= 2 points, got {num}.')
  z_a = encode(model, params['flow'], x_a)
  z_b = encode(model, params['flow'], x_b)
  w = jnp.linspace(0.0, 1.0, num)[None, :, None]
  z = ((1.0 - w) * z_a[:, None] + w * z_b[:, None]).reshape(-1, z_a.shape[-1])
  x = propose(model, params['flow'], z)
  if key is not None:
    x, _ = revise(model, params['ebm'], x, key, n_steps)
  return x.reshape((x_a.shape[0], num) + x_a.shape[1:])
