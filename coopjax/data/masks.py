"""Inpainting masks: ``True`` marks a known (observed) pixel.

- ``square``: the centre square of half the image side is unknown.
- ``free``: free-form strokes (random thick polylines, as in free-form
  inpainting benchmarks) cover roughly a quarter to a half of the image.
- ``half``: the bottom half is unknown.

Masks are numpy booleans of the images' full shape ``[N, H, W, C]`` (the same
for every channel), deterministic given ``seed``. :func:`masked_mse` scores a
fill on the pixels a mask selects (pass ``~mask`` for the hidden ones).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

KINDS = ('square', 'free', 'half')


def _strokes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
  """One free-form mask ``[h, w]``: True where known."""
  hidden = np.zeros((h, w), bool)
  yy, xx = np.mgrid[:h, :w]
  radius = max(1.0, min(h, w) / 10)
  for _ in range(rng.integers(2, 5)):
    y, x = rng.uniform(0, h), rng.uniform(0, w)
    for _ in range(rng.integers(3, 7)):
      angle = rng.uniform(0, 2 * np.pi)
      length = rng.uniform(0.15, 0.4) * min(h, w)
      for s in np.linspace(0, 1, 8):
        cy, cx = y + s * length * np.sin(angle), x + s * length * np.cos(angle)
        hidden |= (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
      y = float(np.clip(y + length * np.sin(angle), 0, h - 1))
      x = float(np.clip(x + length * np.cos(angle), 0, w - 1))
  return ~hidden


def make(kind: str, shape: Tuple[int, ...], seed: int = 0) -> np.ndarray:
  """``[N, H, W, C]`` boolean mask of ``kind`` (see the module docstring).

  Raises:
    ValueError: unknown ``kind`` or a shape that is not ``[N, H, W, C]``.
  """
  if len(shape) != 4:
    raise ValueError(f'Masks are for images [N, H, W, C], got shape {shape}.')
  n, h, w, c = shape
  known = np.ones((n, h, w), bool)
  if kind == 'square':
    known[:, h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2] = False
  elif kind == 'half':
    known[:, h // 2:] = False
  elif kind == 'free':
    rng = np.random.default_rng(seed)
    known = np.stack([_strokes(rng, h, w) for _ in range(n)])
  else:
    raise ValueError(f'Unknown mask {kind!r}; known: {", ".join(KINDS)}.')
  return np.repeat(known[..., None], c, axis=-1)


def masked_mse(x: jax.Array, target: jax.Array,
               mask: Optional[jax.Array] = None) -> jax.Array:
  """Mean squared error over the coordinates where ``mask`` holds (all if
  None); 0 if it holds nowhere. Differentiable in ``x``."""
  sq = (x - target) ** 2
  if mask is None:
    return jnp.mean(sq)
  w = jnp.broadcast_to(mask, sq.shape).astype(sq.dtype)
  return jnp.sum(sq * w) / jnp.maximum(jnp.sum(w), 1.0)


def shown(x: np.ndarray, known: np.ndarray,
          fill: float = float('nan')) -> np.ndarray:
  """``x`` where ``known`` holds, ``fill`` elsewhere: what an inpainting task
  sees. The default NaN is drawn magenta by ``coopjax.plotting``, so hidden
  pixels stand out from black background pixels."""
  return np.where(known, x, fill)


def fill_figures(filled: np.ndarray, truth: np.ndarray,
                 known: np.ndarray) -> Dict[str, float]:
  """An inpainting result's figures: the MSE over the hidden pixels, and how
  many known pixels it changed (0 when they are kept exactly)."""
  return {'masked_pixel_mse': float(masked_mse(filled, truth, ~known)),
          'known_pixels_changed': float(np.sum((filled != truth) & known))}
