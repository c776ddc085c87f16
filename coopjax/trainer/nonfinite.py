"""What the trainer does when a loss or a parameter becomes NaN or inf, or a
metric leaves its bound.

The train step itself never applies a bad update (it keeps the old state and
reports ``metrics['finite'] = False``). A step is bad when a metric or a new
parameter is not finite, or when a metric named in
``config.train.metric_limits`` exceeds its bound in absolute value (a
diverging EBM can run away with every value finite: energies of 1e20, chain
gradients of 1e9). ``config.train.on_nonfinite`` then chooses:

* ``'stop'``: raise :class:`NonFiniteError` naming the step; the last good
  checkpoint is kept.
* ``'skip'``: continue; the batch of that step is not applied (after
  :data:`MAX_BAD_IN_A_ROW` bad steps in a row the run stops as for 'stop').
* ``'rollback'``: restore the last good checkpoint, replay from there and
  skip the batch that failed (for state that went bad without tripping the
  check, e.g. an optimiser moment that overflowed).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

ON_NONFINITE = ('stop', 'skip', 'rollback')
# 'skip' gives up after this many bad steps in a row: the state is not
# recovering (a diverged EBM makes every following step bad).
MAX_BAD_IN_A_ROW = 100


class NonFiniteError(FloatingPointError):
  """Training produced a NaN or inf, or a metric left its bound; the last good
  checkpoint is kept."""


def within_limits(metrics: Mapping[str, jax.Array],
                  limits: Mapping[str, float]) -> jax.Array:
  """True iff every metric named in ``limits`` is at most its bound in
  absolute value (a pure function, traced inside the train step).

  Raises:
    ValueError: ``limits`` names a metric the step does not report.
  """
  unknown = sorted(set(limits) - set(metrics))
  if unknown:
    raise ValueError(
        f'config.train.metric_limits names {unknown}, which this train step '
        f'does not report; it reports {sorted(metrics)}.')
  ok = jnp.asarray(True)
  for name, bound in limits.items():
    ok = ok & jnp.all(jnp.abs(metrics[name]) <= bound)
  return ok


def describe(metrics: Mapping[str, Any], limits: Mapping[str, float]) -> str:
  """Why a step was bad, from its host metrics: ``'non-finite'`` or the
  metrics beyond their bounds, e.g. ``"diverged: energy_gap=3.1e+04 beyond
  config.train.metric_limits {'energy_gap': 1000.0}"``."""
  values = {k: np.asarray(v) for k, v in metrics.items() if k != 'finite'}
  if not all(np.all(np.isfinite(v)) for v in values.values()):
    return 'non-finite'
  beyond = [f'{k}={float(np.max(np.abs(values[k]))):.3g}'
            for k, bound in limits.items()
            if k in values and np.any(np.abs(values[k]) > bound)]
  if not beyond:
    return 'non-finite'  # the new parameters, not the metrics
  return (f'diverged: {", ".join(beyond)} beyond '
          f'config.train.metric_limits {dict(limits)}')


def check_mode(mode: str) -> None:
  """Raises ValueError unless ``mode`` is one of :data:`ON_NONFINITE`."""
  if mode not in ON_NONFINITE:
    raise ValueError(f'config.train.on_nonfinite={mode!r}; expected one of '
                     f'{ON_NONFINITE}.')


def handle(mode: str, done: int, ckpt, state: Any,
           reason: str = 'non-finite', bad_in_a_row: int = 1
           ) -> Optional[Any]:
  """Reacts to a bad step ``done`` (1-based) under ``mode``.

  Args:
    mode: one of :data:`ON_NONFINITE`.
    done: the number of the step that failed.
    ckpt: the run's :class:`~coopjax.trainer.checkpoint.Checkpointer`.
    state: the current (finite) state; gives the structure to restore into.
    reason: what was wrong (:func:`describe`).
    bad_in_a_row: bad steps in a row, this one included; 'skip' stops at
      :data:`MAX_BAD_IN_A_ROW`.

  Returns:
    The restored state for ``'rollback'``, None for ``'skip'``.

  Raises:
    NonFiniteError: for ``'stop'``, for ``'skip'`` after
      :data:`MAX_BAD_IN_A_ROW` bad steps in a row, or for ``'rollback'`` with
      no checkpoint.
  """
  ckpt.wait()
  last = ckpt.latest_step()
  kept = (f'The last good checkpoint (step {last}) in {ckpt.directory} is '
          f'kept (--mode=sample and --mode=eval on this workdir use it)'
          if last is not None else f'No checkpoint was saved yet in '
          f'{ckpt.directory}')
  what = ('Non-finite loss or parameters' if reason == 'non-finite' else
          f'A bad step ({reason})')
  if mode == 'stop':
    raise NonFiniteError(
        f'{what} at step {done}; stopping. {kept}. Lower the learning rate '
        f"or set config.train.on_nonfinite='skip' (or 'rollback') to skip "
        f'such batches.')
  if mode == 'skip':
    if bad_in_a_row >= MAX_BAD_IN_A_ROW:
      raise NonFiniteError(
          f'{what} at step {done}, after {bad_in_a_row} bad steps in a row: '
          f'the run is not recovering; stopping. {kept}; resume with a lower '
          f"learning rate or config.train.on_nonfinite='rollback'.")
    return None
  restored = ckpt.restore(state)
  if restored is None:
    raise NonFiniteError(
        f'{what} at step {done} and no checkpoint in '
        f'{ckpt.directory} to roll back to; lower config.train.ckpt_every.')
  return restored


def skip_step(state: Any) -> Any:
  """``state`` with its step advanced by one and nothing else changed."""
  return state.replace(step=jax.jit(lambda s: s + 1)(state.step))
