"""Test set-up: 4 fake CPU devices, set before JAX starts."""

import os

flags = os.environ.get('XLA_FLAGS', '')
if 'xla_force_host_platform_device_count' not in flags:
  os.environ['XLA_FLAGS'] = (
      flags + ' --xla_force_host_platform_device_count=4').strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position

# Tests build the same small programs many times (every trainer run compiles
# its step, sampler and initialiser); a persistent compilation cache shared by
# the test session and its subprocesses turns the repeats into cache hits.
_CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..',
                      '.pytest_cache', 'jax_compilation_cache')
jax.config.update('jax_compilation_cache_dir', os.path.abspath(_CACHE))
# ... also for command lines the tests start without JAX's variables (their
# default would be ~/.cache/coopjax/jax; coopjax.trainer.compile_cache)
os.environ.setdefault('COOPJAX_COMPILE_CACHE', os.path.abspath(_CACHE))
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)
jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
