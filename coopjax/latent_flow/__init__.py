"""The latent flow prior: a top-down generator with a normalizing-flow prior
in latent space, learned by short-run posterior Langevin inference.

- :mod:`coopjax.latent_flow.model`: :class:`LatentFlowModel`, the densities,
  posterior inference (:func:`refine`), generation, reconstruction,
  inpainting and anomaly scores;
- :mod:`coopjax.latent_flow.losses`: the losses and one device's gradients;
- :mod:`coopjax.latent_flow.algorithm`, :mod:`coopjax.latent_flow.tasks`: the
  trainer's wiring and the command-line tasks (imported on demand).
"""

from coopjax.latent_flow.losses import (generator_loss, loss_and_grads,
                                        observed, prior_loss)
from coopjax.latent_flow.model import (LatentFlowModel, anomaly_score,
                                       anomaly_terms, generate, inpaint,
                                       log_joint, log_likelihood,
                                       prior_log_prob, reconstruct, refine,
                                       sample_prior, squared_error)
