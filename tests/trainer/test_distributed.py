"""Two JAX processes on 127.0.0.1 train like one process with all devices.

Process ``i`` of two (each with 2 fake CPU devices, gloo collectives) loads
its half of every global batch; the global arrays are assembled with
``jax.make_array_from_process_local_data``. After a few CDRL steps on the
checkerboard, the parameters must equal those of one process with 4 fake
devices on the same global batches, up to float summation order. The step-2
checkpoints of these runs, resumed by one process on 4 devices and on 1,
reach the same step 4 (resuming across device and process counts).
"""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from coopjax.trainer import distributed

from helpers import trainer_procs as tp

STEPS = ('--config.train.steps=4', '--config.train.log_every=2',
         '--config.train.ckpt_every=2', '--config.train.sample_every=4')


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path):
  multi, single = str(tmp_path / 'multi'), str(tmp_path / 'single')
  port = tp.free_port()
  procs = [tp.start(multi, *STEPS, f'--coordinator_address=127.0.0.1:{port}',
                    '--num_processes=2', f'--process_id={i}', devices=2,
                    cache=False)
           for i in range(2)]
  procs.append(tp.start(single, *STEPS, devices=4))
  outs = tp.finish_all(procs)
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  assert '4 device(s)' in outs[0] and '4 device(s)' in outs[2]
  # Only process 0 writes logs and samples.
  assert 'step 4/4' in outs[0] and 'step 4/4' not in outs[1]
  assert tp.checkpoint_steps(multi) == [2, 4]
  lines = [json.loads(l) for l in open(os.path.join(multi, 'metrics.jsonl'))]
  assert [l['step'] for l in lines if 'ebm_loss' in l] == [2, 4]
  assert sorted(os.listdir(os.path.join(multi, 'samples'))) == [
      'step_4.npz', 'step_4.png']
  a, b = tp.load_checkpoint(multi, 4), tp.load_checkpoint(single, 4)
  assert int(a['step']) == int(b['step']) == 4
  tp.assert_trees_equal(a['params'], b['params'], rtol=1e-5, atol=1e-6)
  tp.assert_trees_equal(a['ema'], b['ema'], rtol=1e-5, atol=1e-6)
  # The runs did train: step 4 differs from step 2.
  first = tp.load_checkpoint(single, 2)
  moved = max(float(np.max(np.abs(x - y))) for x, y in zip(
      jax.tree_util.tree_leaves(a['params']),
      jax.tree_util.tree_leaves(first['params'])))
  assert moved > 1e-4
  # Resuming across topologies: the 2-process run's step-2 checkpoint
  # continued by one process with 4 devices, and the 4-device run's on one
  # device, reach the straight run's step 4. (The 4-device programs are in
  # the compilation cache by now.)
  resumed = {}
  for name, src, devices in (('four', multi, 4), ('one', single, 1)):
    resumed[name] = str(tmp_path / f'resume_{name}')
    shutil.copytree(src, resumed[name])
    shutil.rmtree(os.path.join(resumed[name], 'checkpoints', '4'))
    assert tp.checkpoint_steps(resumed[name]) == [2]
  procs = [tp.start(resumed['four'], *STEPS, devices=4),
           tp.start(resumed['one'], *STEPS, devices=1)]
  outs = tp.finish_all(procs)
  for p, out, devices in zip(procs, outs, (4, 1)):
    assert p.returncode == 0, out[-3000:]
    assert f'{devices} device(s)' in out and 'at step 2' in out, out[-3000:]
  for name in ('four', 'one'):
    c = tp.load_checkpoint(resumed[name], 4)
    assert int(c['step']) == 4
    for part in ('params', 'ema', 'opt_state', 'stats'):
      tp.assert_trees_equal(c[part], b[part], rtol=1e-5, atol=1e-6)


def test_resolve_decides_when_and_how_to_initialize():
  resolve = distributed.resolve
  assert resolve(env={}) is None  # one process
  assert resolve(distributed=False, env={'SLURM_JOB_ID': '1',
                                         'SLURM_NTASKS': '4'}) is None
  # SLURM with several tasks, or a multi-host TPU slice: JAX detects the rest.
  assert resolve(env={'SLURM_JOB_ID': '1', 'SLURM_NTASKS': '4'}) == {}
  assert resolve(env={'SLURM_JOB_ID': '1', 'SLURM_NTASKS': '1'}) is None
  assert resolve(env={'TPU_WORKER_HOSTNAMES': 'a,b'}) == {}
  assert resolve(distributed=True, env={}) == {}
  manual = dict(coordinator_address='10.0.0.1:1234', num_processes=2,
                process_id=1)
  assert resolve(**manual, env={}) == manual
  env = {'COOPJAX_COORDINATOR_ADDRESS': '10.0.0.1:1234',
         'COOPJAX_NUM_PROCESSES': '2', 'COOPJAX_PROCESS_ID': '0'}
  assert resolve(env=env) == dict(manual, process_id=0)
  assert resolve(process_id=1, env=env) == manual  # flags win
  with pytest.raises(ValueError, match='missing --process_id'):
    resolve(coordinator_address='h:1', num_processes=2, env={})
  with pytest.raises(ValueError, match='outside'):
    resolve(coordinator_address='h:1', num_processes=2, process_id=2, env={})
  with pytest.raises(ValueError, match='COOPJAX_NUM_PROCESSES'):
    resolve(env={'COOPJAX_NUM_PROCESSES': 'two'})
