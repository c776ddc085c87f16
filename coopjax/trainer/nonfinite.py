"""What the trainer does when a loss or a parameter becomes NaN or inf.

The train step itself never applies a non-finite update (it keeps the old
state and reports ``metrics['finite'] = False``); ``config.train.on_nonfinite``
then chooses:

* ``'stop'``: raise :class:`NonFiniteError` naming the step; the last good
  checkpoint is kept.
* ``'skip'``: continue; the batch of that step is not applied.
* ``'rollback'``: restore the last good checkpoint, replay from there and
  skip the batch that failed (for state that went bad without tripping the
  check, e.g. an optimiser moment that overflowed).
"""

from __future__ import annotations

from typing import Any, Optional

import jax

ON_NONFINITE = ('stop', 'skip', 'rollback')


class NonFiniteError(FloatingPointError):
  """Training produced a NaN or inf; the last good checkpoint is kept."""


def check_mode(mode: str) -> None:
  """Raises ValueError unless ``mode`` is one of :data:`ON_NONFINITE`."""
  if mode not in ON_NONFINITE:
    raise ValueError(f'config.train.on_nonfinite={mode!r}; expected one of '
                     f'{ON_NONFINITE}.')


def handle(mode: str, done: int, ckpt, state: Any) -> Optional[Any]:
  """Reacts to a non-finite step ``done`` (1-based) under ``mode``.

  Args:
    mode: one of :data:`ON_NONFINITE`.
    done: the number of the step that failed.
    ckpt: the run's :class:`~coopjax.trainer.checkpoint.Checkpointer`.
    state: the current (finite) state; gives the structure to restore into.

  Returns:
    The restored state for ``'rollback'``, None for ``'skip'``.

  Raises:
    NonFiniteError: for ``'stop'``, or ``'rollback'`` with no checkpoint.
  """
  ckpt.wait()
  if mode == 'stop':
    raise NonFiniteError(
        f'Non-finite loss or parameters at step {done}; stopping. The last '
        f'good checkpoint (step {ckpt.latest_step()}) in {ckpt.directory} is '
        f"kept. Lower the learning rate or set config.train.on_nonfinite="
        f"'skip' (or 'rollback') to skip such batches.")
  if mode == 'skip':
    return None
  restored = ckpt.restore(state)
  if restored is None:
    raise NonFiniteError(
        f'Non-finite loss or parameters at step {done} and no checkpoint in '
        f'{ckpt.directory} to roll back to; lower config.train.ckpt_every.')
  return restored


def skip_step(state: Any) -> Any:
  """``state`` with its step advanced by one and nothing else changed."""
  return state.replace(step=jax.jit(lambda s: s + 1)(state.step))
