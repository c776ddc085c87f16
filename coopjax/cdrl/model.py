"""The CDRL model: its static description and the energies of its levels.

A :class:`CDRLModel` bundles the two network definitions and the schedule.
Everything here is a pure function of parameters and inputs:

* :func:`level_energy` - ``f_theta(x, logsnr_t)`` as an EBM method, used by
  the loss so that positive and negative samples share one network call;
* :func:`level_features` / :func:`energy` - the noise-level features of an EBM,
  computed once per level, and the energy given them (optionally a weighted
  sum over the terms of a condition: guidance, composition);
* :func:`conditional_log_prob` - ``log p(y | x_t)`` of one level, the density
  the chain of :func:`coopjax.cdrl.sampling.refine` runs on;
* :func:`log_density` - the marginal log-density a level's EBM assigns (for
  plots and the density metric); :func:`ood_score`;
* :func:`noisy` - ``x_i`` from ``x`` and a noise draw.

The EBM must offer ``time_features(logsnr, update_stats)`` and
``energy(x, features, update_stats)`` methods (see ``coopjax.models.mlp``).
DRL is the same model with ``initializer=None``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from coopjax.cdrl.conditioning import Condition
from coopjax.cdrl.schedules import Levels, network_input

Params = Any
PAIR_NOISE = ('shared', 'independent')


@dataclasses.dataclass(frozen=True, eq=False)
class CDRLModel:
  """Static description of a CDRL (or DRL) model.

  Attributes:
    ebm: the energy network (higher output = more likely).
    initializer: the initializer network, or None for DRL.
    levels: the per-level constants.
    n_steps: Langevin steps per level (K).
    tweedie: apply the final Tweedie denoising step when sampling.
    final_denoise: when sampling, end the last level's chain with
      :func:`coopjax.cdrl.sampling.denoise_step` (the last step's noise
      removed by Tweedie's formula).
    num_classes: classes the networks are conditioned on (0: unconditional);
      see :mod:`coopjax.cdrl.conditioning`.
    label_drop: probability of training on the null label instead.
    level_input: what the networks' noise-level input receives: ``'logsnr'``
      (CDRL) or ``'index'`` (DRL's integer level; see
      :func:`coopjax.cdrl.schedules.network_input`).
    pair_noise: ``'shared'`` (CDRL's variance reduction: ``x_t`` and
      ``x_{t-1}`` of a training pair share one noise draw) or
      ``'independent'`` (DRL: ``x_t`` is drawn from ``x_{t-1}`` with fresh
      noise).
    init_conditional: with ``num_classes``, whether the initializer is
      conditioned on the label too (False: an unconditional initializer
      proposes for every condition, as in the paper's composition set-up).
    sample_noise: Langevin noise scale when sampling (training chains use
      1; DRL's FID samples use 0.99).
    clean_level_share: training only: the share of examples moved to level
      1 (the clean level ``x_0`` given ``x_1``, the one the samples come
      from); the others draw their level uniformly from ``1..T``. 0 (the
      papers): uniform levels.
  """
  ebm: nn.Module
  initializer: Optional[nn.Module]
  levels: Levels
  n_steps: int = 15
  tweedie: bool = False
  final_denoise: bool = False
  num_classes: int = 0
  label_drop: float = 0.1
  level_input: str = 'logsnr'
  pair_noise: str = 'shared'
  init_conditional: bool = True
  sample_noise: float = 1.0
  clean_level_share: float = 0.0

  def __post_init__(self):
    if not 0.0 <= self.clean_level_share < 1.0:
      raise ValueError(f'clean_level_share must be in [0, 1); got '
                       f'{self.clean_level_share}.')
    if self.pair_noise not in PAIR_NOISE:
      raise ValueError(f'Unknown pair_noise {self.pair_noise!r}; expected one '
                       f'of {PAIR_NOISE}.')
    network_input(self.levels, self.level_input)  # validates level_input

  @property
  def num_levels(self) -> int:
    return self.levels.num_levels

  @property
  def consts(self) -> Levels:
    """The per-level constants as JAX arrays, indexable by traced levels."""
    return self.levels.as_jax()

  @property
  def net_input(self) -> jax.Array:
    """``[T+1]``: the networks' noise-level input for levels ``0..T``."""
    return jnp.asarray(network_input(self.levels, self.level_input))

  @property
  def label_init(self) -> bool:
    """Whether the initializer takes the condition's labels."""
    return bool(self.num_classes) and self.init_conditional


def bcast(v: jax.Array, x: jax.Array) -> jax.Array:
  return v.reshape(v.shape + (1,) * (x.ndim - v.ndim))


def sq_norm(x: jax.Array) -> jax.Array:
  return jnp.sum(jnp.square(x).reshape(x.shape[0], -1), axis=-1)


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
    table = model.ebm.apply(ebm_vars, model.net_input[:-1],
                            method='time_features')
    return jax.tree_util.tree_map(lambda a: a[t - 1], table)
  logsnr = model.net_input[t - 1]
  return jax.vmap(lambda lab: model.ebm.apply(
      ebm_vars, logsnr, label=lab, method='time_features'))(cond.labels)


def energy(ebm: nn.Module, ebm_vars: Params, y: jax.Array, feats,
            coefs: Optional[jax.Array]) -> jax.Array:
  """``f(y)``, or ``sum_j coefs[j] f(y | feats[j])`` for a condition."""
  if coefs is None:
    return ebm.apply(ebm_vars, y, feats, method='energy')
  if coefs.shape[0] == 1:
    one = jax.tree_util.tree_map(lambda a: a[0], feats)
    return coefs[0] * ebm.apply(ebm_vars, y, one, method='energy')
  fs = jax.vmap(lambda fe: ebm.apply(ebm_vars, y, fe, method='energy'))(feats)
  return jnp.tensordot(coefs, fs, 1)


def cond_coefs(cond: Optional[Condition]):
  return None if cond is None else cond.coefs


def log_density(model: CDRLModel, ebm_vars: Params, x: jax.Array,
                t: int, cond: Optional[Condition] = None) -> jax.Array:
  """Log-density (up to a constant) of ``x_{t-1}`` under level ``t``'s EBM alone.

  ``f_theta(scale_t x, logsnr_{t-1}) / s_t^2``, the quantity the reference
  plots; at ``t = 1`` it is the learned density of the data.
  """
  tt = jnp.full((x.shape[0],), t, jnp.int32)
  scale = bcast(model.consts.y_scale[tt], x)
  f = energy(model.ebm, ebm_vars, scale * x,
              level_features(model, ebm_vars, tt, cond), cond_coefs(cond))
  return f / model.consts.step_size_sq[tt]


def ood_score(model: CDRLModel, ebm_vars: Params, x: jax.Array,
              cond: Optional[Condition] = None) -> jax.Array:
  """Out-of-distribution score ``f_theta(x, logsnr_0)`` (higher = in distribution)."""
  one = jnp.ones((x.shape[0],), jnp.int32)
  return energy(model.ebm, ebm_vars, x,
                 level_features(model, ebm_vars, one, cond), cond_coefs(cond))


def conditional_log_prob(ebm: nn.Module):
  """``log p(y | x_t) = f(y) / s_t^2 - tie_t ||y - x_t||^2 / (2 beta_t)``."""

  def log_prob(y, ebm_vars, feats, coefs, x_t, inv_step_sq, tie_coef):
    f = energy(ebm, ebm_vars, y, feats, coefs)
    return f * inv_step_sq - tie_coef * sq_norm(y - x_t)

  return log_prob


def noisy(model: CDRLModel, x: jax.Array, i: jax.Array,
          eps: jax.Array) -> jax.Array:
  """``x_i = sqrt(abar_i) x + sqrt(1 - abar_i) eps`` (``i`` scalar or ``[B]``)."""
  abar = model.consts.abar[i]
  return (bcast(jnp.sqrt(abar), x) * x +
          bcast(jnp.sqrt(1.0 - abar), x) * eps)
