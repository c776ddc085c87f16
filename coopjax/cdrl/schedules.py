"""Noise schedules and every per-level quantity of diffusion recovery likelihood.

Levels are ``i = 0..T``; ``abar_i = sigmoid(logsnr_i)`` is the signal variance of
``x_i = sqrt(abar_i) x + sqrt(1 - abar_i) eps``. The EBM of level ``t = 1..T``
models ``x_{t-1}`` given ``x_t`` in the scaled variable ``y = scale_t x_{t-1}``.

All per-level arrays of :class:`Levels` have length ``T + 1`` and are indexed by
the level ``t`` itself; entry 0 of the ``t = 1..T`` quantities is padding
(a copy of entry 1) so that gathers with ``t`` never read garbage.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

# Reference DRL schedule (Gao et al. 2021): linear betas over 1000 steps,
# subsampled at these indices.
DRL_INDICES = (0, 100, 200, 300, 400, 500, 999)
CT_MODES = ('sigma', 'inv_sigma0', 'one')
# What the networks' noise-level input receives (see :func:`network_input`).
LEVEL_INPUTS = ('logsnr', 'index')


class Levels(NamedTuple):
  """Per-level constants of a recovery-likelihood schedule (numpy, float32).

  Attributes:
    logsnr: ``[T+1]`` logSNR of levels ``0..T``.
    abar: ``[T+1]`` signal variance ``sigmoid(logsnr)``.
    alpha_sq: ``[T+1]`` ``as_t = abar_t / abar_{t-1}``.
    beta: ``[T+1]`` ``beta_t = 1 - as_t``.
    beta_tilde: ``[T+1]`` ``(1 - abar_{t-1}) / (1 - abar_t) * beta_t``.
    y_scale: ``[T+1]`` the scale of ``y = y_scale_t x_{t-1}``: ``sqrt(as_t)``
      for ``t < T`` and 1 at the top level.
    tie_mask: ``[T+1]`` 1 where the conditional EBM has the ``||y - x_t||^2``
      term, 0 at the top level (a marginal EBM on ``x_{T-1}``).
    step_mult: ``[T+1]`` the step-size multiplier ``c_t``.
    step_size_sq: ``[T+1]`` ``s_t^2 = step_const * c_t * beta_t`` (Langevin
      step size squared, also the energy reparameterisation divisor).
    loss_weight: ``[T+1]`` ``w_t = sqrt(beta_1 / beta_t)``.
    proposal_std: ``[T+1]`` the initializer's noise
      ``sqrt(beta_tilde_t) * y_scale_t``.
  """
  logsnr: np.ndarray
  abar: np.ndarray
  alpha_sq: np.ndarray
  beta: np.ndarray
  beta_tilde: np.ndarray
  y_scale: np.ndarray
  tie_mask: np.ndarray
  step_mult: np.ndarray
  step_size_sq: np.ndarray
  loss_weight: np.ndarray
  proposal_std: np.ndarray

  @property
  def num_levels(self) -> int:
    """The number ``T`` of conditional EBMs."""
    return len(self.logsnr) - 1

  def as_jax(self) -> 'Levels':
    """The same constants as JAX arrays, indexable by traced levels."""
    return Levels(*(jnp.asarray(v) for v in self))


def cosine_logsnr(u: np.ndarray, logsnr_min: float = -5.1,
                  logsnr_max: float = 9.8) -> np.ndarray:
  """Cosine schedule in logSNR: ``-2 log tan(a u + b)`` for ``u`` in [0, 1]."""
  b = np.arctan(np.exp(-0.5 * logsnr_max))
  a = np.arctan(np.exp(-0.5 * logsnr_min)) - b
  return -2.0 * np.log(np.tan(a * np.asarray(u, np.float64) + b))


def cosine_abar(num_levels: int = 6, logsnr_min: float = -5.1,
                logsnr_max: float = 9.8) -> np.ndarray:
  """``abar_i`` for ``i = 0..T`` of the cosine logSNR schedule."""
  u = np.arange(num_levels + 1) / num_levels
  return 1.0 / (1.0 + np.exp(-cosine_logsnr(u, logsnr_min, logsnr_max)))


def drl_linear_abar(beta_start: float = 1e-4, beta_end: float = 0.02,
                    num_steps: int = 1000,
                    indices: tuple = DRL_INDICES) -> np.ndarray:
  """``abar`` of the DRL baseline: linear betas, cumulative product, subsampled."""
  betas = np.linspace(beta_start, beta_end, num_steps, dtype=np.float64)
  return np.cumprod(1.0 - betas)[np.asarray(indices)]


def make_levels(abar: np.ndarray, step_const: float = 4e-4,
                ct_mode: str = 'sigma') -> Levels:
  """Derives every per-level constant from ``abar_0..abar_T``.

  Args:
    abar: ``[T+1]`` decreasing signal variances, ``abar_0`` near 1.
    step_const: the constant of ``s_t^2 = step_const * c_t * beta_t``
      (4e-4 for images, 2e-3 in the 2-D reference script).
    ct_mode: ``'sigma'`` for ``c_t = sqrt(1 - abar_{t-1}) / sqrt(1 - abar_0)``
      (the images' default); ``'inv_sigma0'`` for the constant
      ``1 / sqrt(1 - abar_0)`` the 2-D reference script uses; ``'one'`` for
      ``c_t = 1``.

  Returns:
    The :class:`Levels`.

  Raises:
    ValueError: for an unknown ``ct_mode`` or a non-decreasing schedule.
  """
  abar = np.asarray(abar, np.float64)
  if abar.ndim != 1 or len(abar) < 2 or np.any(np.diff(abar) >= 0):
    raise ValueError(f'abar must be a strictly decreasing 1-D array of >= 2 '
                     f'levels, got {abar}.')
  if ct_mode not in CT_MODES:
    raise ValueError(f'Unknown ct_mode {ct_mode!r}; expected one of {CT_MODES}.')
  num = len(abar) - 1
  prev, cur = abar[:-1], abar[1:]
  alpha_sq = cur / prev
  beta = 1.0 - alpha_sq
  beta_tilde = (1.0 - prev) / (1.0 - cur) * beta
  top = np.arange(1, num + 1) == num
  scale = np.where(top, 1.0, np.sqrt(alpha_sq))
  sigma0 = np.sqrt(1.0 - abar[0])
  c = {'sigma': np.sqrt(1.0 - prev) / sigma0,
       'inv_sigma0': np.full(num, 1.0 / sigma0),
       'one': np.ones(num)}[ct_mode]
  step_sq = step_const * c * beta

  def pad(v):
    v = np.asarray(v, np.float64)
    return np.concatenate([v[:1], v]).astype(np.float32)

  return Levels(
      logsnr=np.log(abar / (1.0 - abar)).astype(np.float32),
      abar=abar.astype(np.float32),
      alpha_sq=pad(alpha_sq),
      beta=pad(beta),
      beta_tilde=pad(beta_tilde),
      y_scale=pad(scale),
      tie_mask=pad(np.where(top, 0.0, 1.0)),
      step_mult=pad(c),
      step_size_sq=pad(step_sq),
      loss_weight=pad(np.sqrt(beta[0] / beta)),
      proposal_std=pad(np.sqrt(beta_tilde) * scale),
  )


def index_input(index: np.ndarray) -> np.ndarray:
  """The logSNR input under which a network's embedding sees the integer ``index``.

  The networks embed a logSNR ``l`` as ``sinusoidal(1000 * arctan(exp(-l /
  2)) / (pi / 2))`` (:mod:`coopjax.models.embedding`); this is the inverse,
  ``-2 log tan(pi * index / 2000)``, so that the embedding is
  ``sinusoidal(index)`` exactly as DRL's network embeds its integer level
  (float32-exact to ~1e-6 for ``1 <= index < 1000``). Index 0 would need an
  infinite logSNR, which the embedding clips: callers feed indices >= 1.
  """
  index = np.asarray(index, np.float64)
  if np.any(index < 1) or np.any(index >= 1000):
    raise ValueError(f'index_input needs integers in 1..999, got {index}.')
  return (-2.0 * np.log(np.tan(0.5 * np.pi * index / 1000.0))).astype(
      np.float32)


def network_input(levels: Levels, level_input: str = 'logsnr') -> np.ndarray:
  """``[T+1]``: what the networks' noise-level input receives for level ``i``.

  ``'logsnr'`` (CDRL): ``logsnr_i``. ``'index'`` (DRL, Gao et al. 2021): the
  integer ``i + 1`` through :func:`index_input`. DRL's code conditions the
  EBM that models ``x_{t-1}`` given ``x_t`` on its 0-based index ``t - 1``;
  coopjax feeds ``t`` (the embedding cannot express 0). The shift rotates
  each sine/cosine pair of the embedding by a fixed angle, an orthogonal map
  the first dense layer absorbs (its spectral norm unchanged), so the model
  family is the same (docs/algorithms.md).
  """
  if level_input == 'logsnr':
    return np.asarray(levels.logsnr, np.float32)
  if level_input == 'index':
    return index_input(np.arange(1, levels.num_levels + 2))
  raise ValueError(f'Unknown level input {level_input!r}; expected one of '
                   f'{LEVEL_INPUTS}.')


def levels_from_config(cfg) -> Levels:
  """Builds :class:`Levels` from a ``config.schedule`` ConfigDict.

  Fields: ``kind`` ('cosine' or 'drl_linear'), ``num_levels``, ``logsnr_min``,
  ``logsnr_max``, ``step_const``, ``ct_mode``.
  """
  if cfg.kind == 'cosine':
    abar = cosine_abar(cfg.num_levels, cfg.logsnr_min, cfg.logsnr_max)
  elif cfg.kind == 'drl_linear':
    abar = drl_linear_abar()
    if cfg.num_levels != len(abar) - 1:
      raise ValueError(f'config.schedule.num_levels={cfg.num_levels} but the '
                       f'DRL linear schedule has {len(abar) - 1} levels.')
  else:
    raise ValueError(f"Unknown config.schedule.kind {cfg.kind!r}; expected "
                     f"'cosine' or 'drl_linear'.")
  return make_levels(abar, cfg.step_const, cfg.ct_mode)
