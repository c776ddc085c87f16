"""JAX's persistent compilation cache for the command line.

A run compiles its train step, sampler and initialiser; at full size that is
most of the time to the first step (the CDRL CIFAR-10 step: about 50 s of
XLA:CPU, bench/RESULTS.md). With the cache on, a later run of the same
programs on the same backend (a resumed or restarted run, another workdir of
the same config, a ``--mode=sample`` after training) loads the executables
instead of compiling them again. JAX keys each entry by the program, the
backend, the device kind and count and the compile options, so a stale entry
is never used.

The command line's choice, in order:

1. ``--compile_cache=DIR`` (``--compile_cache=`` turns it off);
2. JAX's own setting (``JAX_COMPILATION_CACHE_DIR``), or JAX's cache switched
   off (``JAX_ENABLE_COMPILATION_CACHE=false``): left as it is;
3. ``$COOPJAX_COMPILE_CACHE``, else ``$XDG_CACHE_HOME/coopjax/jax`` (default
   ``~/.cache/coopjax/jax``), except for a multi-process run on CPUs: there
   JAX writes the cache from process 0 only, so on a warm cache process 0
   reaches its first collective long before the others and gloo gives up
   after 30 s (docs/scaling.md, multi-host). Pass the flag to use it anyway.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional

ENV = 'COOPJAX_COMPILE_CACHE'


def default_dir(env: Optional[Mapping[str, str]] = None) -> str:
  """``$COOPJAX_COMPILE_CACHE``, else ``$XDG_CACHE_HOME/coopjax/jax`` (or
  ``~/.cache/coopjax/jax``)."""
  env = os.environ if env is None else env
  if env.get(ENV):
    return os.path.expanduser(env[ENV])
  base = env.get('XDG_CACHE_HOME') or os.path.join(
      os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'coopjax', 'jax')


def choose(flag: Optional[str], jax_dir: Optional[str], jax_enabled: bool,
           multiprocess_cpu: bool,
           env: Optional[Mapping[str, str]] = None) -> Optional[str]:
  """The cache directory the command line sets, or None to leave JAX's
  setting alone (a directory JAX already has, the cache off, or no cache).

  Args:
    flag: ``--compile_cache``: None when not given, '' to turn it off.
    jax_dir: ``jax.config.jax_compilation_cache_dir`` (from
      ``JAX_COMPILATION_CACHE_DIR``).
    jax_enabled: ``jax.config.jax_enable_compilation_cache``.
    multiprocess_cpu: more than one process on the CPU backend.
    env: the environment (default ``os.environ``).
  """
  if flag is not None:
    return os.path.abspath(os.path.expanduser(flag)) if flag else None
  if jax_dir or not jax_enabled or multiprocess_cpu:
    return None
  return os.path.abspath(default_dir(env))


def configure(flag: Optional[str]) -> None:
  """Points JAX's persistent compilation cache where :func:`choose` says,
  or switches it off for ``--compile_cache=`` (after
  ``jax.distributed.initialize``, before the first compile)."""
  import jax  # pylint: disable=g-import-not-at-top

  if flag == '':
    jax.config.update('jax_enable_compilation_cache', False)
    return
  multiprocess_cpu = (jax.process_count() > 1
                      and jax.default_backend() == 'cpu')
  path = choose(flag, jax.config.jax_compilation_cache_dir,
                jax.config.jax_enable_compilation_cache, multiprocess_cpu)
  if path is not None:
    os.makedirs(path, exist_ok=True)
    jax.config.update('jax_enable_compilation_cache', True)
    jax.config.update('jax_compilation_cache_dir', path)
