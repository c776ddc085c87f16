"""The latent flow-prior generator wired for the trainer (``algorithm='latent_flow'``).

The mathematics is in :mod:`coopjax.latent_flow`; this module builds it from a
config, samples (``z`` from the prior, ``x = g(z)``) and reports. The tasks
(reconstruction, anomaly detection, inpainting, recovery of corrupted data)
are in :mod:`coopjax.latent_flow.tasks`.

Config fields (``config.model``): ``latent_dim``, ``prior`` (``'flow'`` or
``'gaussian'``: the prior-only ablation, ``N(0, I)`` with no parameters),
``flow_net`` (``'reference'``: :class:`coopjax.flows.LatentGlow`, the
authors'; ``'dense'``: :class:`coopjax.flows.DenseFlow`), ``flow_steps``,
``flow_hidden``, ``generator`` (``'reference'``:
:class:`coopjax.models.generator.ReferenceGenerator` with ``gen_ngf``,
``gen_base``, ``gen_last_stride``; ``'small'``: :class:`Generator` with
``gen_width``, ``gen_num_up``), ``sigma``,
``langevin_steps`` (K), ``step_size`` (s). Optimisers ``config.optim.gen`` and
``config.optim.prior``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import jax
import numpy as np

from coopjax.flows import DenseFlow, LatentGlow
from coopjax.latent_flow import tasks as latent_flow_tasks
from coopjax.latent_flow.losses import loss_and_grads
from coopjax.latent_flow.model import LatentFlowModel, generate
from coopjax.models.generator import Generator, ReferenceGenerator
from coopjax.trainer import reports
from coopjax.trainer import state as ts
from coopjax.trainer.tasks import JitCache

PRIORS = ('flow', 'gaussian')
FLOW_NETS = ('reference', 'dense')
GENERATORS = ('reference', 'small')
# Latent draws that initialise the flow prior's data-dependent ActNorm.
_INIT_DRAWS = 256


def build_generator(cfg, image_shape):
  """The generator named by ``config.model.generator``."""
  if cfg.generator == 'reference':
    return ReferenceGenerator(tuple(image_shape), cfg.gen_ngf, cfg.gen_base,
                              cfg.gen_last_stride)
  if cfg.generator == 'small':
    return Generator(tuple(image_shape), cfg.gen_width, cfg.gen_num_up)
  raise ValueError(f'config.model.generator={cfg.generator!r}; expected one '
                   f'of {GENERATORS}.')


def build_prior(cfg):
  """The flow prior of ``config.model`` (None for the Gaussian prior)."""
  if cfg.prior == 'gaussian':
    return None
  if cfg.flow_net == 'reference':
    return LatentGlow(cfg.latent_dim, cfg.flow_steps, cfg.flow_hidden)
  if cfg.flow_net == 'dense':
    return DenseFlow(cfg.latent_dim, cfg.flow_steps, cfg.flow_hidden)
  raise ValueError(f'config.model.flow_net={cfg.flow_net!r}; expected one of '
                   f'{FLOW_NETS}.')


class LatentFlowAlgorithm:
  """Generator ``g(z)`` with a flow (or Gaussian) prior, learned by short-run
  posterior Langevin inference.

  Args:
    config: the full run config.
    dataset: the training set (images).
  """

  def __init__(self, config, dataset):
    if dataset.kind != 'images':
      raise ValueError(f"algorithm='latent_flow' models images; dataset "
                       f'{dataset.name!r} is {dataset.kind}.')
    cfg = config.model
    if cfg.prior not in PRIORS:
      raise ValueError(f'config.model.prior={cfg.prior!r}; expected one of '
                       f'{PRIORS}.')
    if cfg.prior == 'flow' and cfg.latent_dim < 2:
      raise ValueError('config.model.latent_dim must be >= 2 for the flow '
                       f'prior; got {cfg.latent_dim}.')
    self.config = config
    self.example_shape = tuple(dataset.example_shape)
    self.model = LatentFlowModel(
        generator=build_generator(cfg, self.example_shape),
        prior=build_prior(cfg),
        latent_dim=cfg.latent_dim, sigma=cfg.sigma,
        n_steps=cfg.langevin_steps, step_size=cfg.step_size)
    self.optimizers = {'gen': ts.make_optimizer(config.optim.gen)}
    if self.model.prior is not None:
      self.optimizers['prior'] = ts.make_optimizer(config.optim.prior)
    self.jit = JitCache()

  def init_variables(self, key: jax.Array, batch: Dict[str, np.ndarray]):
    """``(params, stats)``; a dense flow's ActNorm is initialised on
    ``N(0, I)`` draws (the prior starts near the standard normal; the
    reference prior's initialisation does not depend on data)."""
    del batch
    k_gen, k_prior, k_draw = jax.random.split(key, 3)
    z = jax.random.normal(k_draw, (_INIT_DRAWS, self.model.latent_dim))
    params = {'gen': self.model.generator.init(k_gen, z[:2])['params']}
    if self.model.prior is not None:
      params['prior'] = self.model.prior.init(k_prior, z)['params']
    return params, {}

  def grads_fn(self, params, stats, batch, keys, step):
    """Per-device gradients; see :func:`coopjax.latent_flow.losses.loss_and_grads`."""
    del step  # the loss does not change with training time.
    return loss_and_grads(self.model, params, stats, batch, keys)

  def sampler(self, num: int, n_steps: Optional[int] = None):
    """``sample(state, key, start) -> (x, {'z': z})`` with the EMA params:
    samples ``start .. start + num - 1`` of the sequence ``key`` defines.

    ``n_steps`` is unused (generation needs no Langevin); it is accepted for
    the trainer's interface.
    """
    del n_steps
    temperature = float(self.config.sample.temperature)

    def run(state, key, start):
      x, z = generate(self.model, state.ema, key, num, temperature, start)
      return x, {'z': z}

    return run

  def report(self, state, dataset, samples: np.ndarray, aux: Dict[str, Any],
             path_prefix: str) -> Dict[str, float]:
    """Writes ``<prefix>.npz`` and ``<prefix>.png``; returns quality figures.

    Also runs the tasks named in ``config.sample.tasks`` (files
    ``<prefix>_<task>.*``) and adds their figures, so that training prints
    e.g. the reconstruction MSE with every sample report.
    """
    del aux
    out = reports.image_report(self.config, dataset, samples, path_prefix)
    tasks = self.tasks
    for name in self.config.sample.tasks:
      if name not in tasks:
        raise ValueError(f'config.sample.tasks has {name!r}; known: '
                         f'{", ".join(sorted(tasks))}.')
      result = tasks[name](state, dataset, f'{path_prefix}_{name}')
      out.update({k: v for k, v in result.items() if isinstance(v, float)})
    return out

  @property
  def tasks(self):
    """CLI modes: ``generate``, ``reconstruct``, ``anomaly``, ``inpaint``,
    ``recover``."""
    return latent_flow_tasks.tasks_for(self)
