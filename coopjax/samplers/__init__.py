"""Samplers that know nothing about training: any pure log-density.

- :mod:`coopjax.samplers.kernels`: one-transition kernels in the style of
  blackjax, ``init(position, log_prob_fn)`` and ``ula_step`` / ``mala_step(key,
  state, log_prob_fn, *, step_size, ...) -> (state, info)``, for positions
  that are any pytree and batches of chains.
- :mod:`coopjax.samplers.langevin`: :func:`~coopjax.samplers.langevin.langevin`,
  a jitted ``lax.scan`` of those kernels over a batch of chains.
- :mod:`coopjax.samplers.adaptation`: dual-averaging step-size adaptation.
- :mod:`coopjax.samplers.diagnostics`: effective sample size, split R-hat.
- :mod:`coopjax.samplers.keys`: typed and legacy PRNG keys.

This package imports nothing else from coopjax, so it can be lifted into other
JAX code as it is::

    from coopjax.samplers.langevin import langevin
    from coopjax.samplers import init, mala_step
"""

from coopjax.samplers.adaptation import (DualAveragingState, adapt_step_size,
                                         dual_averaging_init,
                                         dual_averaging_step_size,
                                         dual_averaging_update)
from coopjax.samplers.diagnostics import effective_sample_size, split_rhat
from coopjax.samplers.kernels import (LangevinState, StepInfo, init,
                                      mala_step, ula_position, ula_step)
