"""CoopFlow: a normalizing flow proposes, Langevin on an EBM refines, both learn.

- :mod:`coopjax.coopflow.model`: :class:`CoopFlowModel`, the flow's proposal,
  the chain (:func:`refine`) and sampling;
- :mod:`coopjax.coopflow.losses`: both losses and one device's gradients;
- :mod:`coopjax.coopflow.inference`: reconstruction, inpainting and
  interpolation through the flow latent;
- :mod:`coopjax.coopflow.algorithm`, :mod:`coopjax.coopflow.tasks`: the
  trainer's wiring and the command-line tasks (imported on demand).
"""

from coopjax.coopflow.inference import interpolate, reconstruct
from coopjax.coopflow.losses import (dequantize, ebm_loss, flow_loss,
                                     loss_and_grads, nll_per_dim)
from coopjax.coopflow.model import (CoopFlowModel, encode, energy,
                                    flow_log_prob, generate, propose, refine,
                                    sample)
