"""Console output of a (possibly multi-host) run: process 0 prints."""

import jax


def log(msg: str) -> None:
  """Prints ``msg`` on process 0 only, flushed at once."""
  if jax.process_index() == 0:
    print(msg, flush=True)
