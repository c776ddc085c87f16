"""Convergence diagnostics over several chains: effective sample size, split R-hat.

Both take draws ``[n_draws, n_chains, ...]`` by default (the layout a
``lax.scan`` over a batch of chains stacks: time first); ``sample_axis`` and
``chain_axis`` say otherwise (blackjax's functions default to chains first,
``chain_axis=0, sample_axis=1``). Every trailing coordinate gets its own value.
Pure ``jax.numpy``: they jit and run on the accelerator.

The formulas are the multi-chain ones of Gelman et al., *Bayesian Data
Analysis* (3rd ed., section 11.4-11.5) as refined by Vehtari et al. (2021,
"Rank-normalization, folding, and localization: an improved R-hat"), without
the rank normalisation.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def _standard(x, sample_axis: int, chain_axis: int) -> jax.Array:
  x = jnp.asarray(x)
  if x.ndim < 2:
    raise ValueError(f'draws need a sample and a chain axis; got shape '
                     f'{x.shape}.')
  sample_axis, chain_axis = sample_axis % x.ndim, chain_axis % x.ndim
  if sample_axis == chain_axis:
    raise ValueError('sample_axis and chain_axis must differ.')
  x = jnp.moveaxis(x, (sample_axis, chain_axis), (0, 1))
  return x.astype(jnp.result_type(x.dtype, jnp.float32))


def _within_between(x: jax.Array):
  """``W`` (mean within-chain variance) and ``B / n`` (variance of chain means)."""
  n, m = x.shape[:2]
  w = jnp.mean(jnp.var(x, axis=0, ddof=1), axis=0)
  b_over_n = (jnp.var(jnp.mean(x, axis=0), axis=0, ddof=1) if m > 1 else
              jnp.zeros_like(w))
  return w, b_over_n, (n - 1) / n * w + b_over_n


@functools.partial(jax.jit, static_argnames=('sample_axis', 'chain_axis'))
def split_rhat(draws, *, sample_axis: int = 0, chain_axis: int = 1) -> jax.Array:
  """Split potential scale reduction ``R-hat`` of each coordinate.

  Every chain is cut into its first and second half (a middle draw of an
  odd-length chain is dropped), and ``R-hat = sqrt(var+ / W)`` over the
  ``2 m`` half-chains of ``n`` draws, with ``W`` the mean within-chain
  variance and ``var+ = (n - 1)/n W + B/n``. Near 1 (say < 1.01) when the
  chains mix; larger when they disagree or drift.

  Args:
    draws: ``[n_draws, n_chains, ...]`` (see the axes arguments), at least 4
      draws per chain.
    sample_axis: the axis of successive draws.
    chain_axis: the axis of chains.

  Returns:
    ``R-hat`` per trailing coordinate.
  """
  x = _standard(draws, sample_axis, chain_axis)
  half = x.shape[0] // 2
  if half < 2:
    raise ValueError(f'split R-hat needs at least 4 draws per chain; got '
                     f'{x.shape[0]}.')
  x = jnp.concatenate([x[:half], x[x.shape[0] - half:]], axis=1)
  w, _, var_plus = _within_between(x)
  return jnp.sqrt(var_plus / w)


@functools.partial(jax.jit, static_argnames=('sample_axis', 'chain_axis'))
def effective_sample_size(draws, *, sample_axis: int = 0,
                          chain_axis: int = 1) -> jax.Array:
  """Multi-chain effective sample size of each coordinate's mean.

  ``ESS = n m / tau`` with ``tau = -1 + 2 sum_k P_k``: the autocorrelations
  ``rho_t = 1 - (W - mean_chains(acov_t)) / var+`` (``acov_t``: each chain's
  lag-``t`` autocovariance, divided by ``n``; computed by FFT) are summed in
  pairs ``P_k = rho_{2k} + rho_{2k+1}`` up to the first pair that is not
  positive (Geyer's initial positive sequence), each pair capped by the one
  before (initial monotone sequence). ``tau`` is at least ``1 / log10(n m)``,
  as in Stan, which bounds the ESS of antithetic chains.

  Args:
    draws: ``[n_draws, n_chains, ...]`` (see the axes arguments).
    sample_axis: the axis of successive draws.
    chain_axis: the axis of chains.

  Returns:
    ESS per trailing coordinate (between ``n m / (2n - 1)``-ish and
    ``n m log10(n m)``).
  """
  x = _standard(draws, sample_axis, chain_axis)
  n, m = x.shape[:2]
  if n < 4:
    raise ValueError(f'the effective sample size needs at least 4 draws per '
                     f'chain; got {n}.')
  centred = x - jnp.mean(x, axis=0)
  size = 1 << (2 * n - 1).bit_length()   # FFT length >= 2n: no wrap-around
  f = jnp.fft.rfft(centred, n=size, axis=0)
  acov = jnp.fft.irfft(f * jnp.conj(f), n=size, axis=0)[:n] / n
  w, _, var_plus = _within_between(x)
  rho = 1.0 - (w - jnp.mean(acov, axis=1)) / var_plus
  rho = rho.at[0].set(1.0)
  pairs = n // 2
  p = rho[0:2 * pairs:2] + rho[1:2 * pairs:2]
  positive = jnp.cumprod(p > 0, axis=0).astype(bool)
  p = jax.lax.cummin(p, axis=0)
  tau = -1.0 + 2.0 * jnp.sum(jnp.where(positive, p, 0.0), axis=0)
  tau = jnp.maximum(tau, 1.0 / jnp.log10(float(n * m)))
  return n * m / tau
