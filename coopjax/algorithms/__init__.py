"""Algorithms the trainer can run, by ``config.algorithm``.

An algorithm object is built from ``(config, dataset)`` and offers:

- ``networks`` and ``optimizers`` (``{name: optax transformation}``);
- ``init_variables(key, batch) -> (params, stats)`` (``batch``: a data batch
  dict, for shapes and data-dependent initialisation);
- ``grads_fn(params, stats, batch, keys) -> (grads, new_stats, metrics)``,
  per device (see :func:`coopjax.parallel.make_train_step`); with
  ``grads_fn_takes_step = True`` it also gets the update's number as a fifth
  argument;
- ``sampler(num, n_steps) -> jitted (state, key) -> (x, aux)`` with ``aux`` a
  dict of arrays indexed by sample first;
- ``report(state, dataset, x, aux, prefix) -> {figure: value}``, which writes
  ``prefix.npz`` and pictures;
- ``tasks``: ``{mode: fn(state, dataset, prefix) -> {figure: value}}``, the
  algorithm's extra CLI modes.

:func:`make_train_step` builds an algorithm's train step; :mod:`coopjax.train`
drives any of them.
"""

from coopjax import parallel

ALGORITHMS = ('cdrl', 'drl', 'coopflow', 'latent_flow')


def make_train_step(algo, ema_decay: float, mesh):
  """``algo``'s jitted, data-parallel train step.

  :func:`coopjax.parallel.make_train_step` on ``algo.grads_fn`` and
  ``algo.optimizers``, passing the update number when the algorithm sets
  ``grads_fn_takes_step``.
  """
  return parallel.make_train_step(
      algo.grads_fn, algo.optimizers, ema_decay, mesh,
      pass_step=getattr(algo, 'grads_fn_takes_step', False))


def build(config, dataset):
  """Builds the algorithm named by ``config.algorithm`` for ``dataset``."""
  name = config.algorithm
  if name in ('cdrl', 'drl'):
    from coopjax.algorithms.cdrl import CDRLAlgorithm  # pylint: disable=g-import-not-at-top
    return CDRLAlgorithm(config, dataset)
  if name == 'coopflow':
    from coopjax.algorithms.coopflow import CoopFlowAlgorithm  # pylint: disable=g-import-not-at-top
    return CoopFlowAlgorithm(config, dataset)
  if name == 'latent_flow':
    from coopjax.algorithms.latent_flow import LatentFlowAlgorithm  # pylint: disable=g-import-not-at-top
    return LatentFlowAlgorithm(config, dataset)
  raise ValueError(f'Unknown config.algorithm {name!r}; known: '
                   f'{", ".join(ALGORITHMS)}.')
