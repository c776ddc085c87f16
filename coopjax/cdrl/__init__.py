"""CDRL and its DRL baseline: the mathematics as pure functions.

- :mod:`coopjax.cdrl.schedules`: the noise schedule and every per-level
  constant;
- :mod:`coopjax.cdrl.conditioning`: labels, guidance and composition;
- :mod:`coopjax.cdrl.model`: :class:`CDRLModel` and the energies of its levels;
- :mod:`coopjax.cdrl.sampling`: proposal, Langevin refinement, Algorithm 2;
- :mod:`coopjax.cdrl.losses`: both losses and their gradients;
- :mod:`coopjax.cdrl.algorithm`, :mod:`coopjax.cdrl.tasks`: the trainer's
  wiring and the command-line tasks (imported on demand, not here).
"""

from coopjax.cdrl.losses import loss_and_grads, training_levels, training_pairs
from coopjax.cdrl.model import (CDRLModel, level_energy, level_features,
                                log_density, noisy, ood_score)
from coopjax.cdrl.sampling import (Trace, denoise_step, propose, refine,
                                   sample, tweedie_denoise)
