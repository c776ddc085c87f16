"""The trainer: ``train_and_evaluate``, ``sample`` and ``evaluate`` for a workdir.

A run's directory holds ``checkpoints/`` (orbax), ``metrics.jsonl``,
``tensorboard/``, ``samples/step_<step>.{npz,png}`` and ``config.json``.
Training always resumes from the latest checkpoint in the workdir; batches and
keys are functions of the step, so a resumed run continues exactly. SIGTERM or
SIGINT saves a checkpoint and stops at the next step boundary (with several
processes, at the next multiple of ``train.stop_check_every``)
(:mod:`coopjax.trainer.preemption`); a workdir of another config is refused
(:mod:`coopjax.trainer.workdir`); non-finite steps are handled by
:mod:`coopjax.trainer.nonfinite`. The algorithm is any
:class:`coopjax.trainer.protocol.Algorithm` of :mod:`coopjax.registry`.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, List, Tuple

import jax
from jax.experimental import multihost_utils

from coopjax import data, models, preflight, registry
from coopjax.console import log
from coopjax.trainer import best as best_lib, nonfinite, parallel, preemption
from coopjax.trainer import precompile
from coopjax.trainer import reports
from coopjax.trainer import state as ts
from coopjax.trainer import workdir as wd
from coopjax.trainer.checkpoint import Checkpointer
from coopjax.trainer.metric_writer import MetricWriter, Progress
from coopjax.trainer.tasks import sample_in_chunks


def _build(config, workdir: str, allow_config_change: bool = False):
  """Checks the config against the workdir; returns the dataset, the
  algorithm, the mesh and the batch that initialises the networks."""
  nonfinite.check_mode(config.train.on_nonfinite)
  preflight.check_train_intervals(config)
  reports.check_eval_options(config)
  changes = wd.check_config(config, workdir, allow_config_change)
  if changes:
    log(f'--allow_config_change: continuing {workdir} with changed '
        f'{", ".join(changes)}.')
  dataset = data.load(config.data, config.seed, jax.process_index(),
                      jax.process_count())
  algo = registry.build(config, dataset)
  mesh = parallel.make_mesh()
  parallel.check_batch_size(config.data.batch_size, mesh)
  init_batch = dataset.batch(0, min(config.data.batch_size, len(dataset)),
                             config.seed)
  return dataset, algo, mesh, init_batch


def _state(config, workdir: str, algo, mesh, init_batch,
           inference: bool = False):
  """The checkpointer and the state: initialised, then restored from the
  workdir's latest checkpoint if it has one. ``inference``: a read-only mode
  (sample, eval, a task) that loads the checkpoint rather than resuming
  training from it."""
  params, stats = jax.jit(algo.init_variables)(jax.random.key(config.seed),
                                               init_batch)
  if jax.process_count() > 1:
    # Data-dependent initialisation may see a different shard per process.
    params, stats = multihost_utils.broadcast_one_to_all((params, stats))
  # Replicated first, so that the restore reads into the mesh's shardings.
  state = parallel.replicated_state(params, stats, algo.optimizers, mesh)
  ckpt = Checkpointer(workdir, config.train.keep_checkpoints)
  restored = ckpt.restore(state)
  if restored is not None:
    state = restored
    log(f'Loaded checkpoint of step {int(state.step)} from {ckpt.directory}.'
        if inference else
        f'Resumed from {ckpt.directory} at step {int(state.step)}.')
  return ckpt, state


def _setup(config, workdir: str, allow_config_change: bool = False,
           inference: bool = False):
  """Dataset, algorithm, mesh, checkpointer and the (restored) state."""
  dataset, algo, mesh, init_batch = _build(config, workdir,
                                           allow_config_change)
  ckpt, state = _state(config, workdir, algo, mesh, init_batch, inference)
  return dataset, algo, mesh, ckpt, state


def samples_dir(workdir: str) -> str:
  path = os.path.join(workdir, 'samples')
  os.makedirs(path, exist_ok=True)
  return path


def _write_report(config, algo, dataset, mesh, state, workdir: str, num: int,
                  n_steps, name: str) -> Dict[str, float]:
  """Samples with the EMA parameters and writes ``samples/<name>.{npz,png}``.

  The samples are drawn in chunks of ``config.sample.chunk``, each split over
  the mesh's devices; sample ``i`` depends only on the step's key and ``i``.
  """
  t0 = time.monotonic()
  chunk = parallel.sample_chunk(num, config.sample.chunk, mesh)
  sampler = algo.jit(('sharded_sampler', chunk, n_steps), parallel.shard_sampler(
      lambda n: algo.sampler(n, n_steps), chunk, mesh))
  key = jax.random.fold_in(jax.random.key(config.seed), int(state.step) + 1)
  x, aux = sample_in_chunks(sampler, state, key, num, chunk, parallel.to_host)
  if jax.process_index() != 0:
    return {}
  prefix = os.path.join(samples_dir(workdir), name)
  since = time.time()
  result = algo.report(state, dataset, x, aux, prefix)
  log(f'Wrote {", ".join(files_written(prefix, since))} '
      f'({time.monotonic() - t0:.1f}s)' +
      ''.join(f' {k}={v:.4f}' for k, v in result.items()))
  return result


def files_written(prefix: str, since: float) -> List[str]:
  """The files ``<prefix>.*`` and ``<prefix>_*`` modified since ``since``
  (``time.time()``), sorted: what a report or task just wrote."""
  folder, base = os.path.split(prefix)
  out = []
  for name in os.listdir(folder or '.'):
    path = os.path.join(folder, name)
    if (name.startswith(base) and name[len(base):len(base) + 1] in '._'
        and os.path.getmtime(path) >= since - 1.0):
      out.append(path)
  return sorted(out)


def train_and_evaluate(config, workdir: str,
                       allow_config_change: bool = False) -> ts.TrainState:
  """Trains ``config`` in ``workdir`` (resuming if it holds a checkpoint).

  Args:
    config: the run's ConfigDict.
    workdir: the run directory.
    allow_config_change: continue a workdir written by a different config.

  Returns:
    The final train state; its step is below ``config.train.steps`` if a stop
    signal ended the run early (a checkpoint of that step was saved).

  Raises:
    NonFiniteError: a loss or parameter became NaN/inf and
      ``config.train.on_nonfinite == 'stop'``.
    coopjax.trainer.checkpoint.CheckpointMismatchError: the workdir holds a
      checkpoint of a different model.
    coopjax.trainer.workdir.ConfigChangedError: the workdir was written by a
      different config.
    coopjax.trainer.workdir.WorkdirError: the workdir cannot be written or is
      full.
  """
  wd.check_writable(workdir)
  t_start = time.monotonic()
  key = jax.random.key(config.seed)
  dataset, algo, mesh, init_batch = _build(config, workdir,
                                           allow_config_change)
  limits = dict(config.train.metric_limits)
  step_fn = parallel.make_train_step(algo.grads_fn, algo.optimizers,
                                     config.train.ema, mesh, limits)
  # The step compiles from the state's shapes while the state is built.
  compiling = precompile.start(
      step_fn, precompile.abstract_state(algo, init_batch, mesh),
      precompile.abstract_batch(init_batch, config.data.batch_size, mesh), key)
  ckpt, state = _state(config, workdir, algo, mesh, init_batch)
  wd.save_config(config, workdir)
  log(f'{config.algorithm} on {dataset.name} ({len(dataset)} examples of '
      f'shape {dataset.example_shape}), '
      f'{mesh.devices.size} device(s), '
      f'params: {models.describe(state.params)}')
  compiling.join()
  writer = MetricWriter(workdir)
  total, cfg = config.train.steps, config.train
  best = best_lib.from_config(cfg, workdir)  # None unless train.best_metric
  start = int(state.step)
  progress = Progress(total, start)
  skipped, step = set(), start  # steps whose batch is skipped after rollback
  # The finite flag of a step is read on the host one step late, once the
  # next step is queued, so the device never waits for the host; a step
  # that logs, saves or samples reads its own at once. The step itself never
  # applies a non-finite update, so reading late keeps every policy exact:
  # 'skip' has nothing to undo, 'stop' names the step, and 'rollback'
  # discards the step queued after it.
  pending = None  # (done, metrics) of a step whose flag is not read yet
  bad_in_a_row = 0

  def rollback_state(unread, state):
    """Reads the finite flags of ``unread`` ``(done, metrics)`` steps in
    order: None if all were finite or skipped, else the state to continue
    from after a rollback ('stop' raises)."""
    nonlocal bad_in_a_row
    for done, metrics in unread:
      if bool(metrics['finite']):
        bad_in_a_row = 0
        continue
      bad_in_a_row += 1
      reason = nonfinite.describe(jax.device_get(metrics), limits)
      restored = nonfinite.handle(cfg.on_nonfinite, done, ckpt, state, reason,
                                  bad_in_a_row)
      what = 'non-finite loss' if reason == 'non-finite' else reason
      if restored is None:
        log(f'Step {done}: {what}; update skipped.')
        continue
      log(f'Step {done}: {reason.split(":")[0]}; rolled back to step '
          f'{int(restored.step)}, its batch will be skipped.')
      skipped.add(done - 1)
      return restored
    return None

  with preemption.PreemptionGuard(cfg.stop_check_every) as guard:
    while step < total:
      done = step + 1
      if step in skipped:
        state, metrics = nonfinite.skip_step(state), None
      else:
        batch = dataset.batch(step, config.data.batch_size, config.seed,
                              jax.process_index(), jax.process_count())
        state, metrics = step_fn(state, parallel.put_batch(batch, mesh), key)
        if step == start:
          # The first step compiles: timed on its own, out of the rate.
          jax.block_until_ready(metrics)
          log(f'First step (compilation included) done '
              f'{time.monotonic() - t_start:.1f}s after the start of '
              f'training (set-up included).')
          progress.started(done)
      log_now = done % cfg.log_every == 0 or done == total
      save_now = done % cfg.ckpt_every == 0 or done == total
      sample_now = done % cfg.sample_every == 0 or done == total
      unread = [] if pending is None else [pending]
      pending = None
      if metrics is not None:
        if log_now or save_now or sample_now:
          unread.append((done, metrics))
        else:
          pending = (done, metrics)
      restored = rollback_state(unread, state)
      if restored is not None:
        state, step, pending = restored, int(restored.step), None
        continue
      if metrics is not None and log_now:
        scalars = parallel.host_metrics(metrics)
        writer.write(done, scalars)
        log(progress.line(done, scalars))
        if best is not None:
          best.consider(done, scalars, state)
      t_report = time.monotonic()
      if save_now:
        ckpt.save(done, state)
      if sample_now:
        figures = _write_report(
            config, algo, dataset, mesh, state, workdir, config.sample.num,
            config.sample.langevin_steps, f'step_{done}')
        writer.write(done, figures)
        if best is not None:
          best.consider(done, figures, state)
      if save_now or sample_now:  # not training: left out of the rate
        progress.exclude(time.monotonic() - t_report)
      step = done
      if step < total and guard.should_stop(step):
        restored = rollback_state([] if pending is None else [pending], state)
        if restored is not None:
          state, step = restored, int(restored.step)
        if ckpt.latest_step() != step:
          ckpt.save(step, state, force=True)
        log(f'Stopped after step {step} by a signal; checkpoint saved in '
            f'{ckpt.directory}. Run the same command again to resume.')
        break
  ckpt.wait()
  if best is not None:
    best.close()
  writer.close()
  return state


def restore_for_inference(config, workdir: str) -> Tuple[Any, ...]:
  """``(dataset, algo, mesh, state)`` of a trained workdir's latest (or, with
  ``eval.checkpoint='best'``, best) checkpoint, for sampling and tasks."""
  dataset, algo, mesh, ckpt, state = _setup(config, workdir,
                                            allow_config_change=True,
                                            inference=True)
  if ckpt.latest_step() is None:
    raise FileNotFoundError(
        f'No checkpoint in {ckpt.directory}; train first with '
        f'--mode=train --workdir={workdir}.')
  if config.eval.checkpoint == 'best':
    state = best_lib.restore(workdir, state)
    log(f'Using the best checkpoint, of step {int(state.step)}.')
  return dataset, algo, mesh, state


def sample(config, workdir: str) -> Dict[str, float]:
  """Draws ``config.sample.num`` samples from the latest checkpoint (EMA params).

  Uses ``config.sample.langevin_steps`` per level (None: the model's K) and
  writes
  ``samples/sample_<step>.{npz,png}``.
  """
  dataset, algo, mesh, state = restore_for_inference(config, workdir)
  return _write_report(config, algo, dataset, mesh, state, workdir,
                       config.sample.num, config.sample.langevin_steps,
                       f'sample_{int(state.step)}')


def _write_result(workdir: str, name: str,
                  result: Dict[str, float]) -> Dict[str, float]:
  """Writes ``<workdir>/<name>.json`` and prints it and its path (process
  0); returns it."""
  if jax.process_index() == 0:
    path = os.path.join(workdir, f'{name}.json')
    with open(path, 'w', encoding='utf-8') as f:
      json.dump(result, f, indent=2)
    log(json.dumps(result))
    log(f'Wrote {path}')
  return result


def evaluate(config, workdir: str) -> Dict[str, float]:
  """Quality metrics of the latest checkpoint (``eval.checkpoint='best'``: the
  best); also written to ``eval.json``.

  With FID (``config.eval.inception_path``), ``eval.json`` also records its
  protocol under ``fid_protocol``: number of samples, clamping, uint8
  quantisation, reference split and size, the Inception weights' hash.

  For 2-D data: the total-variation distance between the histogram of
  ``config.eval.num_samples`` samples and the true density, and the same
  distance for the learned density on a grid.
  """
  dataset, algo, mesh, state = restore_for_inference(config, workdir)
  result = _write_report(config, algo, dataset, mesh, state, workdir,
                         config.eval.num_samples, config.sample.langevin_steps,
                         f'eval_{int(state.step)}')
  if 'fid' in result:
    result['fid_protocol'] = reports.fid_protocol(config,
                                                  config.eval.num_samples)
  return _write_result(workdir, 'eval', {'step': int(state.step), **result})


def run_task(config, workdir: str, mode: str) -> Dict[str, float]:
  """Runs the algorithm's task ``mode`` (e.g. ``inpaint``) on the latest
  checkpoint; writes ``samples/<mode>_<step>.*`` and ``<mode>.json``."""
  dataset, algo, _, state = restore_for_inference(config, workdir)
  tasks = algo.tasks
  if mode not in tasks:
    raise ValueError(f'--mode={mode} is not a task of {config.algorithm}; '
                     f'its tasks: {", ".join(sorted(tasks)) or "none"}.')
  prefix = os.path.join(samples_dir(workdir), f'{mode}_{int(state.step)}')
  since = time.time()
  result = tasks[mode](state, dataset, prefix)
  if jax.process_index() == 0:
    log(f'Wrote {", ".join(files_written(prefix, since)) or "no pictures"}')
  return _write_result(workdir, mode, {'step': int(state.step), **result})
