"""Helpers for tests that run the trainer in subprocesses (signals, hosts).

Every subprocess shares the test session's persistent compilation cache and
has a hard timeout; a process still running at its deadline is killed.
"""

import os
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

from helpers import REPO

TIMEOUT_S = 420
# The tiny checkerboard model of helpers/trainer.py, as command-line overrides.
TINY = ('--config.data.batch_size=16', '--config.data.num_points=500',
        '--config.model.width=8', '--config.model.mults=(1,2)',
        '--config.model.temb_dim=16', '--config.model.init_width=32',
        '--config.model.langevin_steps=2', '--config.sample.langevin_steps=2',
        '--config.optim.ebm.warmup=0', '--config.optim.init.warmup=0',
        '--config.sample.num=64', '--config.eval.num_samples=64',
        '--config.sample.grid_k=1')


def env(devices: int = 4, cache: bool = True) -> dict:
  """The environment of a trainer subprocess with ``devices`` CPU devices.

  ``cache=False`` for the processes of a multi-process run: JAX writes its
  persistent compilation cache from process 0 only, so on a warm cache process
  0 would start its first collective while process 1 still compiles, and gloo
  gives up on a peer after 30 s (seen on this loaded 2-core machine).
  """
  e = dict(os.environ)
  e['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={devices}'
  e['JAX_PLATFORMS'] = 'cpu'
  e['JAX_COMPILATION_CACHE_DIR'] = (
      jax.config.jax_compilation_cache_dir or '' if cache else '')
  e['JAX_ENABLE_COMPILATION_CACHE'] = 'true' if cache else 'false'
  e['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0.5'
  e['JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES'] = '0'
  for k in ('COOPJAX_DISTRIBUTED', 'COOPJAX_COORDINATOR_ADDRESS',
            'COOPJAX_NUM_PROCESSES', 'COOPJAX_PROCESS_ID', 'SLURM_JOB_ID',
            'TPU_WORKER_HOSTNAMES'):
    e.pop(k, None)
  return e


def start(workdir: str, *args: str, devices: int = 4,
          cache: bool = True) -> subprocess.Popen:
  """Starts ``python -m coopjax.main`` on the tiny checkerboard config."""
  cmd = [sys.executable, '-m', 'coopjax.main',
         '--config=configs/checkerboard.py', f'--workdir={workdir}', *TINY,
         *args]
  return subprocess.Popen(cmd, cwd=REPO, env=env(devices, cache),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)


def finish(proc: subprocess.Popen, deadline: float) -> str:
  """Waits for ``proc`` until ``deadline`` (time.time()); kills it after.

  Returns:
    Its output. Raises AssertionError with the output on a timeout.
  """
  try:
    out, _ = proc.communicate(timeout=max(1.0, deadline - time.time()))
  except subprocess.TimeoutExpired:
    proc.kill()
    out, _ = proc.communicate()
    raise AssertionError(f'trainer timed out; output:\n{out[-3000:]}')
  return out


def finish_all(procs) -> list:
  """Waits for every process of ``procs`` until one shared deadline
  (:data:`TIMEOUT_S` from now); kills those still running after it.

  Returns:
    Their outputs, in order. Raises AssertionError on a timeout.
  """
  deadline = time.time() + TIMEOUT_S
  try:
    return [finish(p, deadline) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def checkpoint_steps(workdir: str) -> list:
  path = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(path):
    return []
  return sorted(int(n) for n in os.listdir(path) if n.isdigit())


def load_checkpoint(workdir: str, step: int) -> dict:
  """A checkpoint as numpy arrays, whatever topology wrote it."""
  path = os.path.join(workdir, 'checkpoints', str(step), 'default')
  ckptr = ocp.StandardCheckpointer()
  meta = ckptr.metadata(path)
  meta = getattr(meta, 'item_metadata', meta)
  dev = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = jax.tree_util.tree_map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=dev), meta)
  return jax.device_get(ckptr.restore(path, abstract))


def assert_trees_equal(a, b, rtol: float = 0.0, atol: float = 0.0) -> None:
  assert (jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b))
  jax.tree_util.tree_map(
      lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y),
                                              rtol=rtol, atol=atol), a, b)
