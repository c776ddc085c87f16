"""coopjax.flows.LatentGlow, the authors' latent flow prior: invertibility,
exact log-determinant, normalisation, the authors' initialisation."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from coopjax.flows import LatentGlow

from helpers.flows import mass_outside, midpoint_grid
from helpers.networks import KEY, perturbed

_jit = functools.partial(jax.jit,
                         compiler_options={'xla_backend_optimization_level': 0})
FLOW2 = LatentGlow(features=2, num_steps=3, hidden=8)
FLOW6 = LatentGlow(features=6, num_steps=2, hidden=8)


def _params(flow, scale=0.3):
  variables = _jit(flow.init)(KEY, jnp.zeros((1, flow.features)))
  return perturbed(variables, scale)


def _apply(flow, method):
  return _jit(functools.partial(flow.apply, method=getattr(LatentGlow,
                                                           method)))


def test_initialisation_is_the_authors():
  params = _jit(FLOW6.init)(KEY, jnp.zeros((1, 6)))['params']
  w = np.asarray(params['linears_0']['w'])
  np.testing.assert_allclose(w @ w.T, np.eye(6), atol=1e-5)  # orthogonal
  f = params['couplings_0']['f']
  for name in ('w_out', 'b_out', 'logs_out'):  # a zero output layer
    assert not np.any(np.asarray(f[name]))
  small = np.concatenate([np.ravel(f['w0']), np.ravel(f['w1']),
                          np.ravel(params['actnorms_0']['b'])])
  assert 0.02 < np.std(small) < 0.08  # N(0, 0.05^2)


def test_inverse_of_forward_and_logdet_against_the_jacobian():
  params = _params(FLOW6)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(5, 6)), jnp.float32)
  z, logdet = _apply(FLOW6, 'forward')(params, x)
  np.testing.assert_allclose(_apply(FLOW6, 'inverse')(params, z), x,
                             atol=1e-4)

  def single(v):
    return FLOW6.apply(params, v[None], method=LatentGlow.forward)[0][0]

  jac = _jit(jax.vmap(jax.jacfwd(single)))(x)
  np.testing.assert_allclose(logdet, jnp.linalg.slogdet(jac)[1], rtol=1e-4,
                             atol=1e-4)


def test_log_prob_integrates_to_one_on_a_grid():
  # midpoint rule over [-20, 20]^2, spacing 0.05; sampled mass outside < 1e-3
  params = _params(FLOW2, 0.1)
  samples = _jit(functools.partial(FLOW2.apply, method=LatentGlow.sample),
                 static_argnums=2)(params, jax.random.key(3), 20_000)
  outside = mass_outside(samples, 20.0)
  assert outside < 1e-3
  grid, area = midpoint_grid(20.0, 800)
  total = float(jnp.sum(jnp.exp(_apply(FLOW2, 'log_prob')(params, grid)))
                * area)
  assert abs(total + outside - 1.0) < 3e-3, (total, outside)
