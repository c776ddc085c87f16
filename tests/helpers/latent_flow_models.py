"""A linear-Gaussian generator whose posterior is known in closed form."""

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from coopjax import latent_flow as lf

from helpers import config_module

SHAPE = (2, 2, 1)  # tiny images for the linear-Gaussian model


def linear_model(sigma=0.5, prior=None, latent_dim=2, **kw):
  """x = W z + sigma eps (a bias-free dense generator), N(0, I) prior."""

  class Linear(nn.Module):

    @nn.compact
    def __call__(self, z):
      return nn.Dense(int(np.prod(SHAPE)), use_bias=False)(z).reshape(
          (-1,) + SHAPE)

  model = lf.LatentFlowModel(Linear(), prior, latent_dim, sigma, **kw)
  w = np.array([[1.0, -0.5, 0.3, 0.8], [0.2, 0.9, -0.7, 0.4]], np.float32)
  return model, {'gen': {'Dense_0': {'kernel': jnp.asarray(w)}}}, w


def gaussian_posterior(w, x, sigma, rows=None):
  """Mean and covariance of z | x for x = W^T z + noise, z ~ N(0, I)."""
  rows = slice(None) if rows is None else rows
  wv = w[:, rows]
  cov = np.linalg.inv(np.eye(w.shape[0]) + wv @ wv.T / sigma ** 2)
  return cov @ wv @ x[rows] / sigma ** 2, cov


latent_flow_digits = config_module('latent_flow_digits')


def tiny_config(variant='', **train_overrides):
  c = latent_flow_digits.get_config(variant)
  c.data.batch_size = 8
  c.model.update(latent_dim=4, gen_width=4, flow_steps=2, flow_hidden=8,
                 langevin_steps=2)
  c.train.update(steps=2, log_every=1, ckpt_every=2, sample_every=2)
  c.train.update(**train_overrides)
  c.sample.num = 8
  c.task.update(num=8, recon_steps=2, chunk=64)
  return c
