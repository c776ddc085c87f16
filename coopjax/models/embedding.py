"""Noise-level embeddings shared by every network conditioned on logSNR."""

import math

import jax
import jax.numpy as jnp


def logsnr_to_time(logsnr: jax.Array) -> jax.Array:
  """Maps logSNR to ``arctan(exp(-logsnr / 2)) / (pi / 2)`` in [0, 1]."""
  logsnr = jnp.clip(jnp.asarray(logsnr, jnp.float32), -20.0, 20.0)
  return jnp.arctan(jnp.exp(-0.5 * logsnr)) / (0.5 * math.pi)


def sinusoidal_embedding(time: jax.Array, dim: int,
                         scale: float = 1000.0) -> jax.Array:
  """Transformer-style sinusoidal embedding of ``scale * time``.

  Args:
    time: ``[N]`` values, typically in [0, 1].
    dim: embedding width (an odd width is zero-padded).
    scale: multiplies ``time`` before embedding.

  Returns:
    ``[N, dim]`` float32 embedding ``[sin(w t), cos(w t)]``.
  """
  half = dim // 2
  freqs = jnp.exp(jnp.arange(half, dtype=jnp.float32) *
                  (-math.log(10000.0) / max(half - 1, 1)))
  angles = (scale * jnp.asarray(time, jnp.float32))[:, None] * freqs[None, :]
  emb = jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)
  if dim % 2:
    emb = jnp.pad(emb, ((0, 0), (0, 1)))
  return emb


def logsnr_embedding(logsnr: jax.Array, dim: int) -> jax.Array:
  """The CDRL noise-level embedding: sinusoidal embedding of the mapped logSNR."""
  return sinusoidal_embedding(logsnr_to_time(logsnr), dim)
