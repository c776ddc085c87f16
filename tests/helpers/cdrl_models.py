"""CDRL models with known answers: a quadratic energy, a tiny MLP pair."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from coopjax import cdrl
from coopjax.cdrl import schedules
from coopjax.models.mlp import MLPEnergy, MLPInitializer


class QuadraticEnergy(nn.Module):
  """``f(y) = -a/2 ||y - m||^2`` with the EBM protocol of coopjax.cdrl."""
  dim: int = 2
  a: float = 1.0

  def setup(self):
    self.m = self.param('m', nn.initializers.constant(-1.0), (self.dim,))

  def time_features(self, logsnr, update_stats=False):
    del update_stats
    return (logsnr[:, None],)

  def energy(self, x, features, update_stats=False):
    del features, update_stats
    return -0.5 * self.a * jnp.sum((x - self.m) ** 2, axis=-1)

  def __call__(self, x, logsnr, update_stats=False):
    return self.energy(x, self.time_features(logsnr))


def toy_levels():
  return schedules.make_levels(schedules.cosine_abar(), 2e-3, 'one')


def quadratic_model(t, n_steps, **kw):
  # f = -a/2 ||y - m||^2 with a = 3 s_t^2 / beta_t: the conditional has
  # precision (3 + tie) / beta_t, and the chain's mean relaxes at rate
  # s_t^2 * precision / 2 >= 3e-3 per step.
  levels = toy_levels()
  a = float(3 * levels.step_size_sq[t] / levels.beta[t])
  return cdrl.CDRLModel(QuadraticEnergy(a=a), None, levels, n_steps, **kw), a


def mlp_model(initializer=True):
  levels = schedules.make_levels(schedules.cosine_abar(), 2e-3, 'inv_sigma0')
  ebm = MLPEnergy(width=8, mults=(1, 2), temb_dim=16)
  init = MLPInitializer(width=32, temb_dim=16) if initializer else None
  return cdrl.CDRLModel(ebm, init, levels, 3)


def init_all(model, key=0):
  k1, k2 = jax.random.split(jax.random.key(key))
  x, ls = jnp.zeros((2, 2)), jnp.zeros(2)
  ev = model.ebm.init(k1, x, ls)
  params = {'ebm': ev['params']}
  if model.initializer is not None:
    ip = model.initializer.init(k2, x, ls)['params']
    # Non-zero last layer so the initializer gradient is not trivially zero.
    params['init'] = jax.tree_util.tree_map(
        lambda p: p + 0.1 * jax.random.normal(k2, p.shape), ip)
  return params, {'ebm': ev['batch_stats']}
