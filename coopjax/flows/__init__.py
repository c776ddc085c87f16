"""Normalizing flows as Flax Linen modules with plain-pytree parameters.

* :class:`DenseFlow` (``dense.py``): vectors ``[B, D]``, the latent flow prior
  and the 2-D CoopFlow proposal.
* :class:`GlowFlow` (``glow.py``): multi-scale images ``[B, H, W, C]``, the
  CoopFlow proposal.
* :class:`LatentGlow` (``latent_glow.py``): the authors' latent flow prior.
* :class:`FlowPlusPlus` (``flowpp.py``): the authors' CoopFlow proposal.
* ``layers.py``: ActNorm, invertible linear / 1x1 conv, affine coupling.
* ``dequantize.py``: uniform dequantisation, logit transform, bits per dim.

Both flows share one API, every method a pure function of the variables::

    variables = model.init(key, x_batch)      # forward pass; ActNorm is
                                              # initialised from x_batch
    z, logdet = model.apply(variables, x, method=Model.forward)
    x = model.apply(variables, z, method=Model.inverse)
    log_p = model.apply(variables, x, method=Model.log_prob)        # [B]
    x = model.apply(variables, key, n, method=Model.sample)

``variables`` is ``{'params': params}`` and nothing else.
"""

from coopjax.flows.dense import DenseFlow
from coopjax.flows.dequantize import (bits_per_dim, inverse_logit_transform,
                                      logit_transform, uniform_dequantize)
from coopjax.flows.glow import GlowFlow, latent_shapes, squeeze, unsqueeze
from coopjax.flows.latent_glow import LatentGlow
from coopjax.flows.layers import (ActNorm, AffineCoupling, FlowStep,
                                  InvertibleLinear, normal_log_prob)

__all__ = [
    'ActNorm',
    'AffineCoupling',
    'DenseFlow',
    'FlowStep',
    'GlowFlow',
    'InvertibleLinear',
    'LatentGlow',
    'bits_per_dim',
    'inverse_logit_transform',
    'latent_shapes',
    'logit_transform',
    'normal_log_prob',
    'squeeze',
    'uniform_dequantize',
    'unsqueeze',
]
