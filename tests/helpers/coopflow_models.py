"""Tiny CoopFlow models (points and 4x4 images) and their inputs."""

import jax
import jax.numpy as jnp

from coopjax import coopflow, flows
from coopjax.models.convnet import ConvEnergy
from coopjax.models.mlp import MLPEnergy

from helpers import config_module


def point_model(**kw):
  return coopflow.CoopFlowModel(
      ebm=MLPEnergy(width=8, mults=(1,), temb_dim=4, use_sn=False),
      flow=flows.DenseFlow(features=2, num_steps=2, hidden=8),
      example_shape=(2,), **kw)


def image_model(**kw):
  return coopflow.CoopFlowModel(
      ebm=ConvEnergy(width=4, mults=(1,)),
      flow=flows.GlowFlow(image_shape=(4, 4, 1), num_scales=1,
                          steps_per_scale=2, hidden=8, logit_alpha=0.05),
      example_shape=(4, 4, 1), **kw)


def init(model, x, seed=0):
  k1, k2 = jax.random.split(jax.random.key(seed))
  return {'ebm': model.ebm.init(k1, x, jnp.zeros(len(x)))['params'],
          'flow': model.flow.init(k2, x)['params']}


def images(n, seed=0):
  return jax.random.uniform(jax.random.key(seed), (n, 4, 4, 1), minval=-0.9,
                            maxval=0.9)


coopflow_checkerboard = config_module('coopflow_checkerboard')


def tiny_config(variant=''):
  c = coopflow_checkerboard.get_config(variant or 'scratch')
  c.data.update(batch_size=16, num_points=500)
  c.model.update(width=8, mults=(1,), temb_dim=4, flow_steps=2,
                 flow_hidden=8, langevin_steps=2)
  c.optim.flow.warmup = 0
  c.train.update(steps=4, log_every=2, ckpt_every=4, sample_every=4)
  c.sample.update(num=64, chunk=64, grid_k=1)
  c.eval.num_samples = 64
  return c
