"""MLP networks for vector data (the 2-D toy densities of the CDRL reference).

Both follow the reference script's architecture. The EBM splits its forward
pass in two so that samplers can cache the noise-level part:

* ``time_features(logsnr)`` -> one projected embedding per residual block;
  it depends only on the noise level (6 distinct values), so a Langevin chain
  computes it once rather than at every step.
* ``energy(x, features)`` -> ``[B]`` network output ``f_theta(x)``.

``__call__(x, logsnr)`` composes the two.
"""

from typing import Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from coopjax.models.embedding import logsnr_embedding
from coopjax.models.layers import SNDense, lrelu, torch_default_init


class EnergyBlock(nn.Module):
  """Residual block: lrelu, dense, + time projection, lrelu, dense * g, + skip."""
  features: int
  use_sn: bool = True

  @nn.compact
  def __call__(self, x, time_proj, update_stats: bool = False):
    h = SNDense(self.features, self.use_sn)(lrelu(x), update_stats)
    h = lrelu(h + time_proj)
    h = SNDense(self.features, self.use_sn)(h, update_stats)
    h = h * self.param('g', nn.initializers.ones, (1, self.features))
    if x.shape[-1] != self.features:
      x = SNDense(self.features, self.use_sn)(x, update_stats)
    return h + x


class MLPEnergy(nn.Module):
  """The reference 2-D EBM ``f_theta(x, logsnr) -> [B]`` (higher = more likely).

  Attributes:
    width: base width (128 in the reference).
    mults: width multiplier per stage.
    blocks_per_stage: residual blocks per stage.
    temb_dim: sinusoidal embedding width.
    temb_mult: the embedding MLP is ``temb_mult * temb_dim`` wide (4 in the
      reference).
    use_sn: spectral norm on every dense layer but the final projection.
  """
  width: int = 128
  mults: Sequence[int] = (1, 2, 2, 2)
  blocks_per_stage: int = 1
  temb_dim: int = 128
  use_sn: bool = True
  temb_mult: int = 4

  def setup(self):
    widths = [self.width * m for m in self.mults
              for _ in range(self.blocks_per_stage)]
    self.temb_in = SNDense(self.temb_mult * self.temb_dim, self.use_sn)
    self.temb_out = SNDense(self.temb_mult * self.temb_dim, self.use_sn)
    self.time_maps = [SNDense(w, self.use_sn) for w in widths]
    self.stem = SNDense(self.width, self.use_sn)
    self.blocks = [EnergyBlock(w, self.use_sn) for w in widths]
    self.head = nn.Dense(1, use_bias=False, kernel_init=torch_default_init)

  def time_features(self, logsnr: jax.Array,
                    update_stats: bool = False) -> Tuple[jax.Array, ...]:
    """Per-block projections of the noise-level embedding, each ``[N, width]``."""
    emb = logsnr_embedding(logsnr, self.temb_dim)
    emb = self.temb_out(lrelu(self.temb_in(emb, update_stats)), update_stats)
    return tuple(lrelu(m(lrelu(emb), update_stats)) for m in self.time_maps)

  def energy(self, x: jax.Array, features: Tuple[jax.Array, ...],
             update_stats: bool = False) -> jax.Array:
    """Network output ``f_theta(x)`` ``[B]`` given precomputed time features."""
    h = self.stem(x, update_stats)
    for block, proj in zip(self.blocks, features):
      h = block(h, proj, update_stats)
    return jnp.sum(self.head(nn.relu(h)), axis=-1)

  def __call__(self, x: jax.Array, logsnr: jax.Array,
               update_stats: bool = False) -> jax.Array:
    return self.energy(x, self.time_features(logsnr, update_stats),
                       update_stats)


class InitializerBlock(nn.Module):
  """GroupNorm residual block with scale-shift conditioning on the embedding."""
  features: int
  groups: int = 32

  @nn.compact
  def __call__(self, x: jax.Array, emb: jax.Array) -> jax.Array:
    h = nn.silu(nn.GroupNorm(self.groups, epsilon=1e-6)(x))
    h = nn.Dense(self.features, kernel_init=torch_default_init)(h)
    scale, shift = jnp.split(
        nn.Dense(2 * self.features, kernel_init=torch_default_init)(
            nn.silu(emb)), 2, axis=-1)
    h = nn.GroupNorm(self.groups, epsilon=1e-6)(h) * (1 + scale) + shift
    h = nn.Dense(self.features, kernel_init=nn.initializers.zeros)(nn.silu(h))
    if x.shape[-1] != self.features:
      x = nn.Dense(self.features, kernel_init=torch_default_init)(x)
    return h + x


class MLPInitializer(nn.Module):
  """The reference 2-D initializer ``g_phi(x_t, logsnr_t) = x_t + out``.

  The last layer is zero-initialised, so training starts from ``g = x_t``.
  """
  width: int = 64
  temb_dim: int = 128
  num_blocks: int = 1
  groups: int = 32

  @nn.compact
  def __call__(self, x: jax.Array, logsnr: jax.Array) -> jax.Array:
    emb = logsnr_embedding(logsnr, self.temb_dim)
    emb = nn.Dense(self.temb_dim, kernel_init=torch_default_init)(emb)
    emb = nn.Dense(self.temb_dim, kernel_init=torch_default_init)(nn.silu(emb))
    h = nn.Dense(self.width, kernel_init=torch_default_init)(x)
    for _ in range(self.num_blocks):
      h = InitializerBlock(self.width, self.groups)(h, emb)
    out = nn.Dense(x.shape[-1], use_bias=False,
                   kernel_init=nn.initializers.zeros)(nn.silu(h))
    return x + out
