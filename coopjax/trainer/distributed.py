"""Multi-host start-up and the few cross-process helpers the trainer needs.

Every host runs the same program (JAX's multi-controller model). Before JAX
touches a device, :func:`initialize` joins the processes through
``jax.distributed.initialize``: when asked by flag or by the environment
(``COOPJAX_DISTRIBUTED=1`` with ``COOPJAX_COORDINATOR_ADDRESS``,
``COOPJAX_NUM_PROCESSES``, ``COOPJAX_PROCESS_ID``), or automatically inside a
multi-task SLURM job or on a multi-host Cloud TPU slice, where JAX reads the
coordinator, process count and id from the cluster itself.

Only process 0 writes logs, metrics, samples and PNGs (:func:`is_main`);
checkpoints are written by all processes through orbax.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional

import jax
import numpy as np
from jax.experimental import multihost_utils

ENV_PREFIX = 'COOPJAX_'


def _env_int(env: Mapping[str, str], name: str) -> Optional[int]:
  value = env.get(ENV_PREFIX + name, '')
  if not value:
    return None
  try:
    return int(value)
  except ValueError as e:
    raise ValueError(f'Environment variable {ENV_PREFIX}{name}={value!r} is '
                     f'not an integer.') from e


def detect_cluster(env: Optional[Mapping[str, str]] = None) -> Optional[str]:
  """Names the multi-process cluster this process runs in, if any.

  Args:
    env: the environment (default ``os.environ``).

  Returns:
    ``'slurm'`` inside a SLURM job step with more than one task, ``'tpu'`` on
    a multi-host Cloud TPU slice, else None (a single process).
  """
  env = os.environ if env is None else env
  if env.get('SLURM_JOB_ID') and int(env.get('SLURM_NTASKS', '1') or 1) > 1:
    return 'slurm'
  hosts = env.get('TPU_WORKER_HOSTNAMES', '')
  if hosts and len(hosts.split(',')) > 1:
    return 'tpu'
  return None


def resolve(distributed: Optional[bool] = None,
            coordinator_address: str = '',
            num_processes: Optional[int] = None,
            process_id: Optional[int] = None,
            env: Optional[Mapping[str, str]] = None) -> Optional[dict]:
  """Decides whether and how to call ``jax.distributed.initialize``.

  Flags win over ``COOPJAX_*`` environment variables, which win over cluster
  auto-detection (where JAX finds the values itself).

  Args:
    distributed: True/False forces the choice; None decides from the rest.
    coordinator_address: ``host:port`` of process 0's coordinator.
    num_processes: number of processes.
    process_id: this process's index in ``[0, num_processes)``.
    env: the environment (default ``os.environ``).

  Returns:
    The keyword arguments for ``jax.distributed.initialize`` (empty where JAX
    auto-detects them), or None for a single-process run.

  Raises:
    ValueError: an incomplete or inconsistent manual setting, naming the
      missing flag or variable.
  """
  env = os.environ if env is None else env
  if distributed is None and env.get(ENV_PREFIX + 'DISTRIBUTED'):
    distributed = env[ENV_PREFIX + 'DISTRIBUTED'].lower() in ('1', 'true',
                                                               'yes')
  address = coordinator_address or env.get(ENV_PREFIX + 'COORDINATOR_ADDRESS',
                                           '')
  count = num_processes if num_processes is not None else _env_int(
      env, 'NUM_PROCESSES')
  index = process_id if process_id is not None else _env_int(env,
                                                             'PROCESS_ID')
  manual = {k: v for k, v in (('coordinator_address', address or None),
                              ('num_processes', count),
                              ('process_id', index)) if v is not None}
  if distributed is False:
    return None
  if distributed is None and not manual and detect_cluster(env) is None:
    return None
  if manual and len(manual) < 3 and detect_cluster(env) is None:
    missing = [f'--{k} (or {ENV_PREFIX}{k.upper()})'
               for k in ('coordinator_address', 'num_processes', 'process_id')
               if k not in manual]
    raise ValueError(
        f'A manual multi-process launch needs all of --coordinator_address, '
        f'--num_processes and --process_id; missing {", ".join(missing)}. '
        f'On SLURM or a Cloud TPU slice leave all three unset.')
  if count is not None and index is not None and not 0 <= index < count:
    raise ValueError(f'--process_id={index} is outside [0, --num_processes='
                     f'{count}).')
  return manual


def initialize(distributed: Optional[bool] = None,
               coordinator_address: str = '',
               num_processes: Optional[int] = None,
               process_id: Optional[int] = None) -> bool:
  """Joins the other processes if this is a multi-process run.

  Must be called before anything touches a JAX device. On CPU the cross-process
  collectives use gloo.

  Args:
    distributed: see :func:`resolve`.
    coordinator_address: see :func:`resolve`.
    num_processes: see :func:`resolve`.
    process_id: see :func:`resolve`.

  Returns:
    True if ``jax.distributed.initialize`` was called.
  """
  kwargs = resolve(distributed, coordinator_address, num_processes, process_id)
  if kwargs is None:
    return False
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(**kwargs)
  return True


def is_main() -> bool:
  """True on process 0, the one that writes logs, metrics and samples."""
  return jax.process_index() == 0


def sync(name: str) -> None:
  """Barrier: returns once every process has reached ``sync(name)``."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def any_process(flag: bool) -> bool:
  """True if ``flag`` is true on any process (a collective: all must call)."""
  if jax.process_count() == 1:
    return bool(flag)
  flags = multihost_utils.process_allgather(np.asarray(flag, np.int32))
  return bool(np.any(flags))
