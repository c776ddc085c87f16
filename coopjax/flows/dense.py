"""A dense normalizing flow for vectors: 2-D toy data and latent-space priors.

``DenseFlow`` stacks ``num_steps`` steps of ActNorm -> invertible linear
(orthogonal-initialised, LU-parameterised) -> affine coupling with an MLP of
width ``hidden`` and scale ``sigmoid(h + 2)``: the flow prior of the latent
flow-prior generator (docs/algorithms.md, section 4), also the proposal of the 2-D
CoopFlow experiments. The base distribution is ``N(0, I)``.

Usage (all methods are pure functions of the variables)::

    flow = DenseFlow(features=2)
    variables = jax.jit(flow.init)(key, x_batch)       # data-dependent ActNorm
    z, logdet = flow.apply(variables, x, method=DenseFlow.forward)
    x = flow.apply(variables, z, method=DenseFlow.inverse)
    log_p = flow.apply(variables, x, method=DenseFlow.log_prob)      # [B]
    x = flow.apply(variables, key, 64, method=DenseFlow.sample)      # n static

``variables`` holds only the ``'params'`` collection.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from coopjax.flows.layers import FlowSampling, FlowStep


class DenseFlow(FlowSampling, nn.Module):
  """Normalizing flow on ``[B, features]`` vectors with a standard normal base.

  Attributes:
    features: dimension ``D`` of the data (at least 2).
    num_steps: number of flow steps.
    hidden: width of the coupling MLPs.
  """
  features: int
  num_steps: int = 5
  hidden: int = 64

  def setup(self):
    """Creates the flow steps and checks the configuration."""
    if self.features < 2:
      raise ValueError(
          f'DenseFlow.features must be at least 2 for the coupling layers to '
          f'split the vector; got features={self.features}.')
    self.steps = [
        FlowStep(self.hidden, conv=False) for _ in range(self.num_steps)
    ]

  @property
  def latent_dim(self) -> int:
    """Dimension of the latent (equal to the data's)."""
    return self.features

  def _check(self, x: jax.Array, name: str):
    """Raises a ValueError unless ``x`` has shape ``[B, features]``."""
    if x.ndim != 2 or x.shape[-1] != self.features:
      raise ValueError(
          f'DenseFlow(features={self.features}) expects {name} of shape '
          f'[B, {self.features}]; got {x.shape}.')

  def __call__(self, x: jax.Array):
    """Same as :meth:`forward`; ``model.init(key, x_batch)`` calls this."""
    return self.forward(x)

  def forward(self, x: jax.Array):
    """Maps data to latent.

    Args:
      x: ``[B, D]`` data.

    Returns:
      ``(z, logdet)``: ``[B, D]`` latents and ``[B]`` values of
      ``log|det dz/dx|``.
    """
    self._check(x, 'x')
    logdet = jnp.zeros((x.shape[0],), x.dtype)
    for step in self.steps:
      x, step_logdet = step(x)
      logdet = logdet + step_logdet
    return x, logdet

  def inverse(self, z: jax.Array) -> jax.Array:
    """Maps latent to data.

    Args:
      z: ``[B, D]`` latents.

    Returns:
      ``[B, D]`` data ``x`` with ``forward(x)[0] == z``.
    """
    self._check(z, 'z')
    for step in reversed(self.steps):
      z, _ = step(z, reverse=True)
    return z
