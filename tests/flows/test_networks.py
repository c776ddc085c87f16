"""Tests of coopjax.flows: invertibility, exact log-determinants, normalisation,
data-dependent initialisation and a maximum-likelihood fit.

XLA compilation dominates the run time on CPU, so the tests share a handful of
flow configurations and one cached jitted function per (flow, method, shape).
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from coopjax.flows import ActNorm, DenseFlow, GlowFlow

from helpers.flows import mass_outside, midpoint_grid


DENSE2 = DenseFlow(features=2, num_steps=4, hidden=32)


DENSE4 = DenseFlow(features=4, num_steps=3, hidden=16)


DENSE100 = DenseFlow(features=100)


GLOW = GlowFlow((4, 4, 2), num_scales=2, steps_per_scale=2, hidden=8,
                logit_alpha=0.05)


INIT_BATCH = 256


def _init_key(seed):
  """A key for ``init``: the 'rbg' generator compiles several times faster
  than threefry on CPU, and a flow's init draws one key per parameter."""
  return jax.random.key(seed, impl='rbg')


# XLA's backend optimisations cost more compile time than they save here.
_jit = functools.partial(jax.jit,
                         compiler_options={'xla_backend_optimization_level': 0})


@functools.lru_cache(maxsize=None)
def _fn(flow, name, static_argnums=()):
  """A jitted ``(variables, *args) -> flow.apply(..., method=name)``."""
  if name == 'init':
    return _jit(flow.init)
  method = getattr(type(flow), name)
  return _jit(functools.partial(flow.apply, method=method),
              static_argnums=static_argnums)


def _perturb(variables, seed, scale):
  """Adds noise of std ``scale / sqrt(fan_in)`` to every parameter.

  This breaks the near-identity initialisation (zero-initialised coupling
  outputs, orthogonal W with log|det W| = 0). Off the diagonal, the packed LU
  factors get std ``scale / (2 D)`` instead: at D = 100 the factors of an
  orthogonal matrix have norms ~10, so their product is ~10 times more
  sensitive to noise than the entries of W.
  """
  rng = np.random.default_rng(seed)  # NumPy: no XLA compilation per shape
  leaves, treedef = jax.tree_util.tree_flatten_with_path(variables)
  noisy = []
  for path, leaf in leaves:
    fan_in = math.prod(leaf.shape[:-1])
    noise = rng.standard_normal(leaf.shape).astype(np.float32)
    if jax.tree_util.keystr(path).endswith("['lu']"):
      noise = np.where(np.eye(fan_in, dtype=bool), noise,
                       noise / (2 * math.sqrt(fan_in)))
    noisy.append(leaf + scale / math.sqrt(fan_in) * noise)
  return jax.tree_util.tree_unflatten(treedef, noisy)


def _init(flow, x_init, seed=0, scale=0.2):
  """Data-dependent init on ``x_init``, then a parameter perturbation."""
  variables = _fn(flow, 'init')(_init_key(seed), x_init)
  return _perturb(variables, seed, scale)


def _dense_data(features, seed=1):
  """An init batch with a different mean and scale per feature."""
  x = np.random.default_rng(seed).standard_normal((INIT_BATCH, features))
  x = x * np.linspace(0.5, 2.0, features) + np.linspace(-1, 1, features)
  return jnp.asarray(x, jnp.float32)


def _image_data(seed=1):
  """Uniform images in [-0.95, 0.95] shaped for ``GLOW``."""
  x = np.random.default_rng(seed).uniform(-0.95, 0.95, (8, 4, 4, 2))
  return jnp.asarray(x, jnp.float32)


def _jacobian_logdet(flow, variables, x):
  """Per-example ``log|det dz/dx|`` from the dense Jacobian of ``forward``."""

  def single(x_flat):
    z, _ = flow.apply(variables, x_flat.reshape((1,) + x.shape[1:]),
                      method=type(flow).forward)
    return z.reshape(-1)

  jac = _jit(jax.vmap(jax.jacfwd(single)))(x.reshape(x.shape[0], -1))
  return jnp.linalg.slogdet(jac)[1]


@pytest.mark.parametrize('shape', [(256, 3), (16, 4, 4, 5)])
def test_actnorm_init_standardises_the_init_batch(shape):
  x = 3.0 * np.random.default_rng(1).standard_normal(shape) - 2.0
  x = jnp.asarray(x * np.arange(1, shape[-1] + 1), jnp.float32)  # per channel
  layer = ActNorm()
  variables = _jit(layer.init)(jax.random.key(0), x)
  y, logdet = _jit(layer.apply)(variables, x)
  axes = tuple(range(x.ndim - 1))
  np.testing.assert_allclose(y.mean(axis=axes), 0.0, atol=1e-5)
  np.testing.assert_allclose(y.std(axis=axes), 1.0, atol=1e-4)
  spatial = math.prod(shape[1:-1])
  expected = -spatial * jnp.sum(jnp.log(x.std(axis=axes)))
  np.testing.assert_allclose(logdet, expected, rtol=1e-5)


@pytest.mark.parametrize('flow, x', [(DENSE2, _dense_data(2)),
                                     (GLOW, _image_data())],
                         ids=['dense', 'glow'])
def test_every_actnorm_in_a_flow_standardises_its_init_input(flow, x):
  variables = _fn(flow, 'init')(_init_key(0), x)
  capture = _jit(functools.partial(
      flow.apply, mutable=['intermediates'],
      capture_intermediates=lambda mdl, _: isinstance(mdl, ActNorm)))
  _, state = capture(variables, x)
  outputs = jax.tree_util.tree_leaves(
      state['intermediates'], is_leaf=lambda t: isinstance(t, tuple))
  num_steps = (flow.num_steps if isinstance(flow, DenseFlow) else
               flow.num_scales * flow.steps_per_scale)
  assert len(outputs) == num_steps
  for (y, _), in outputs:
    axes = tuple(range(y.ndim - 1))
    np.testing.assert_allclose(y.mean(axis=axes), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=axes), 1.0, atol=1e-4)


def test_init_through_inverse_is_refused():
  with pytest.raises(ValueError, match='model.init'):
    ActNorm().init(jax.random.key(0), jnp.zeros((4, 2)), reverse=True)


@pytest.mark.parametrize('flow', [DENSE2, DENSE4, DENSE100],
                         ids=lambda f: f'D{f.features}')
def test_dense_inverse_of_forward_is_identity(flow):
  x = _dense_data(flow.features)
  variables = _init(flow, x)
  z, _ = _fn(flow, 'forward')(variables, x)
  assert float(jnp.mean(jnp.abs(z - x))) > 0.1  # not trivially the identity
  np.testing.assert_allclose(_fn(flow, 'inverse')(variables, z), x,
                             atol=1e-4, rtol=1e-4)
  eps = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
  z_rec, _ = _fn(flow, 'forward')(variables,
                                  _fn(flow, 'inverse')(variables, eps))
  np.testing.assert_allclose(z_rec, eps, atol=1e-4, rtol=1e-4)


def test_glow_inverse_of_forward_is_identity_and_sample_shape():
  x = _image_data()
  variables = _init(GLOW, x)
  z, logdet = _fn(GLOW, 'forward')(variables, x)
  assert z.shape == (8, 4 * 4 * 2) and logdet.shape == (8,)
  np.testing.assert_allclose(_fn(GLOW, 'inverse')(variables, z), x, atol=1e-4)
  eps = np.random.default_rng(2).standard_normal(z.shape).astype(np.float32)
  x_eps = _fn(GLOW, 'inverse')(variables, eps)
  # The inverse logit transform maps R onto |x| < 1 / (1 - 2 alpha).
  assert float(jnp.max(jnp.abs(x_eps))) <= 1.0 / (1.0 - 2 * GLOW.logit_alpha)
  samples = jax.eval_shape(
      lambda v, key: GLOW.apply(v, key, 3, method=GlowFlow.sample), variables,
      jax.random.key(5))
  assert samples.shape == (3, 4, 4, 2)


def test_dense_logdet_matches_jacobian():
  x = _dense_data(4)
  variables = _init(DENSE4, x)
  _, logdet = _fn(DENSE4, 'forward')(variables, x)
  expected = _jacobian_logdet(DENSE4, variables, x[:8])
  assert float(jnp.std(logdet)) > 0.01  # couplings are non-trivial
  np.testing.assert_allclose(logdet[:8], expected, atol=1e-3, rtol=1e-4)


def test_glow_logdet_matches_jacobian():
  # 4x4x2 images: a 32 x 32 Jacobian through the logit transform, two levels
  # (squeeze, split) and four steps of actnorm, 1x1 conv and coupling.
  x = _image_data()
  variables = _init(GLOW, x)
  _, logdet = _fn(GLOW, 'forward')(variables, x)
  expected = _jacobian_logdet(GLOW, variables, x[:4])
  np.testing.assert_allclose(logdet[:4], expected, atol=2e-3, rtol=1e-4)


def test_dense_log_prob_integrates_to_one():
  # Perturbed 2-D flow; midpoint rule on an 800 x 800 grid over [-20, 20]^2.
  # The sigmoid coupling scale gives the flow heavy tails, hence the wide box;
  # 1e5 samples bound the mass outside it (< 1e-3; ~2e-5 here). The density
  # is smooth between ReLU kinks and ~1 wide, so with spacing 0.05 the
  # quadrature error is ~1e-4. Tolerance 2e-3: dropping the log-det of the
  # ActNorms, the linear layers or the couplings gives 0.34, 1.008 or 1.70.
  variables = _init(DENSE2, _dense_data(2), scale=0.2)
  samples = _fn(DENSE2, 'sample', static_argnums=2)(variables,
                                                    jax.random.key(7), 100_000)
  outside = mass_outside(samples, 20.0)
  assert outside < 1e-3
  grid, area = midpoint_grid(20.0, 800)
  log_p = _fn(DENSE2, 'log_prob')(variables, grid)
  integral = float(jnp.sum(jnp.exp(log_p)) * area)
  assert abs(integral - 1.0) < 2e-3, integral
  assert abs(integral + outside - 1.0) < 2e-3, (integral, outside)


def test_dense_maximum_likelihood_fit_of_a_gaussian():
  mean = jnp.array([1.0, -2.0])
  cov = jnp.array([[2.0, 1.2], [1.2, 1.5]])
  chol = jnp.linalg.cholesky(cov)
  entropy = 0.5 * math.log((2 * math.pi * math.e)**2 * float(
      jnp.linalg.det(cov)))

  def draw(key, n):
    return mean + jax.random.normal(key, (n, 2)) @ chol.T

  # ActNorm initialised on N(0, I) data: the fit starts far from the target.
  start = np.random.default_rng(1).standard_normal((INIT_BATCH, 2))
  start = jnp.asarray(start, jnp.float32)
  params = _fn(DENSE2, 'init')(_init_key(0), start)['params']
  log_prob = _fn(DENSE2, 'log_prob')
  optimizer = optax.adam(optax.cosine_decay_schedule(1e-2, 600))

  @_jit
  def train(params, key):

    def step(carry, step_key):
      params, opt_state = carry
      loss = lambda p: -jnp.mean(
          DENSE2.apply({'params': p}, draw(step_key, 256),
                       method=DenseFlow.log_prob))
      updates, opt_state = optimizer.update(jax.grad(loss)(params), opt_state)
      return (optax.apply_updates(params, updates), opt_state), None

    carry = (params, optimizer.init(params))
    (params, _), _ = jax.lax.scan(step, carry, jax.random.split(key, 600))
    return params

  test_x = _jit(draw, static_argnums=1)(jax.random.key(3), 100_000)
  initial = float(jnp.mean(log_prob({'params': params}, test_x)))
  variables = {'params': train(params, jax.random.key(2))}
  fitted = float(jnp.mean(log_prob(variables, test_x)))
  # E_p[log q] <= -H(p) for any normalised q; standard error here ~0.003.
  assert initial < -entropy - 0.5
  assert -entropy - 0.03 < fitted < -entropy + 0.01, (fitted, -entropy)
  samples = _fn(DENSE2, 'sample', static_argnums=2)(variables,
                                                    jax.random.key(4), 100_000)
  np.testing.assert_allclose(samples.mean(axis=0), mean, atol=0.03)
  np.testing.assert_allclose(jnp.cov(samples.T), cov, atol=0.05)


def test_bad_shapes_are_reported():
  with pytest.raises(ValueError, match='divisible'):
    GlowFlow((12, 12, 3), num_scales=3).init(jax.random.key(0),
                                              jnp.zeros((2, 12, 12, 3)))
  with pytest.raises(ValueError, match='features=3'):
    DenseFlow(features=3).init(jax.random.key(0), jnp.zeros((2, 4)))
