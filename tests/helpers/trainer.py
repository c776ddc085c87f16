"""The tiny checkerboard model that the trainer tests run in-process."""

import threading

import jax

from helpers import config_module


checkerboard = config_module('checkerboard')


def tiny_config(**train_overrides):
  c = checkerboard.get_config()
  c.data.batch_size = 16
  c.data.num_points = 500
  c.model.width, c.model.mults, c.model.temb_dim = 8, (1, 2), 16
  c.model.init_width = 32
  c.model.langevin_steps = c.sample.langevin_steps = 2
  c.optim.ebm.warmup = c.optim.init.warmup = 0
  c.train.update(steps=4, log_every=2, ckpt_every=2, sample_every=4)
  c.train.update(**train_overrides)
  c.sample.num = c.eval.num_samples = 64
  c.sample.grid_k = 1
  return c


def params_of(state):
  return jax.device_get(state.params)


def lowerings_of(name):
  """A context manager recording the lowerings of jitted ``name``: a list of
  the names of the threads that lowered it."""
  events = []

  def listener(event, duration, **kw):
    del duration
    if (event == '/jax/core/compile/jaxpr_to_mlir_module_duration'
        and kw.get('fun_name') == f'jit({name})'):
      events.append(threading.current_thread().name)

  class Recording:

    def __enter__(self):
      jax.monitoring.register_event_duration_secs_listener(listener)
      return events

    def __exit__(self, *exc):
      jax.monitoring.unregister_event_duration_listener(listener)

  return Recording()
