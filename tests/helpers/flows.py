"""Quadrature of 2-D densities, shared by the flow tests."""

import jax.numpy as jnp


def midpoint_grid(half: float, n: int):
  """``(points [n * n, 2], cell area)``: the midpoints of an ``n x n`` grid
  over ``[-half, half]^2``."""
  h = 2 * half / n
  ticks = -half + h * (jnp.arange(n) + 0.5)
  return jnp.stack(jnp.meshgrid(ticks, ticks), axis=-1).reshape(-1, 2), h * h


def mass_outside(samples, half: float) -> float:
  """The fraction of ``samples`` ``[N, 2]`` outside ``[-half, half]^2``."""
  return float(jnp.mean(jnp.any(jnp.abs(samples) > half, axis=-1)))
