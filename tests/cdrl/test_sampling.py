"""coopjax.cdrl.sampling against closed forms on a quadratic energy: refine,
fewer steps, per-example sampling, the Tweedie and final denoising steps."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import cdrl, rng
from coopjax.cdrl import conditioning, schedules
from coopjax.models.mlp import MLPEnergy

from helpers.cdrl_models import quadratic_model, mlp_model, init_all


@pytest.mark.slow
@pytest.mark.parametrize('t', [2, 6])
def test_refine_samples_the_conditional_gaussian(t):
  model, a = quadratic_model(t, n_steps=3000)
  ev = model.ebm.init(jax.random.key(0), jnp.zeros((1, 2)), jnp.zeros(1))
  n = 4000
  x_t = jnp.ones((n, 2))
  keys = rng.example_keys(jax.random.key(1), 0, n)
  y, info = cdrl.refine(model, ev, x_t, x_t, jnp.full((n,), t), keys)
  lv = model.levels
  precision = a / lv.step_size_sq[t] + lv.tie_mask[t] / lv.beta[t]
  mean = (-a / lv.step_size_sq[t] + lv.tie_mask[t] / lv.beta[t]) / precision
  y = np.asarray(y)
  # ULA's variance bias here is s^2 precision / 4 <= 0.2%; 3000 steps are
  # >= 9 relaxation times of the mean; with 8000 draws the SE of the variance
  # is 1.6%.
  np.testing.assert_allclose(y.mean(), mean, atol=4 * np.sqrt(1 / precision / 8000) + 1e-3)
  np.testing.assert_allclose(y.var(), 1 / precision, rtol=0.07)
  assert info.log_prob.shape == (3000,)


def test_fewer_steps_scale_the_step_size():
  model, a = quadratic_model(2, n_steps=4)
  ev = model.ebm.init(jax.random.key(0), jnp.zeros((1, 2)), jnp.zeros(1))
  y0 = jnp.full((3, 2), 2.0)
  x_t = jnp.zeros((3, 2))
  keys = rng.example_keys(jax.random.key(1), 0, 3)
  y1, _ = cdrl.refine(model, ev, y0, x_t, jnp.full((3,), 2), keys, n_steps=1,
                      noise_scale=0.0)
  lv = model.levels
  s2 = lv.step_size_sq[2] * 4  # sqrt(K / K') = 2 on the step size
  grad = -a * (2.0 + 1.0) / lv.step_size_sq[2] - (2.0 - 0.0) / lv.beta[2]
  np.testing.assert_allclose(y1, 2.0 + 0.5 * s2 * grad, rtol=1e-4)


def test_sampling_is_per_example_and_shapes():
  model = mlp_model()
  params, stats = init_all(model)
  ev = {'params': params['ebm'], 'batch_stats': stats['ebm']}
  run = jax.jit(lambda key, start: cdrl.sample(model, ev, params['init'], key,
                                               4, (2,), start=start))
  full = jax.jit(lambda key: cdrl.sample(model, ev, params['init'], key, 8,
                                         (2,)))
  key = jax.random.key(3)
  x, trace = full(key)
  assert x.shape == (8, 2) and trace.levels.shape == (6, 8, 2)
  assert trace.proposals.shape == (6, 8, 2)
  np.testing.assert_allclose(trace.levels[-1], x)  # no Tweedie step
  a, _ = run(key, 0)
  b, _ = run(key, 4)
  np.testing.assert_allclose(jnp.concatenate([a, b]), x, rtol=1e-5, atol=1e-6)


def test_tweedie_step_matches_closed_form():
  model, a = quadratic_model(1, n_steps=1, tweedie=True)
  ev = model.ebm.init(jax.random.key(0), jnp.zeros((1, 2)), jnp.zeros(1))
  x = jnp.array([[0.5, -0.2]])
  lv = model.levels
  sc = lv.y_scale[1]
  score = -a * sc * (sc * x + 1.0) / (0.5 * lv.step_size_sq[1])
  want = (x + (1 - lv.abar[0]) * score) / np.sqrt(lv.abar[0])
  np.testing.assert_allclose(cdrl.tweedie_denoise(model, ev, x), want, rtol=1e-5)


@pytest.mark.parametrize('n_steps', [None, 1])
def test_denoise_step_matches_closed_form(n_steps):
  # y + s^2 grad log p(y | x_t), with s^2 the chain's squared step (K / K'
  # times s_t^2 for K' < K steps) and grad log p = -a (y + 1) / s_t^2
  # - (y - x_t) / beta_t on the quadratic energy.
  model, a = quadratic_model(2, n_steps=4)
  ev = model.ebm.init(jax.random.key(0), jnp.zeros((1, 2)), jnp.zeros(1))
  y = jnp.array([[2.0, -0.5], [0.3, 1.0]])
  x_t = jnp.array([[0.0, 0.5], [1.0, -1.0]])
  lv = model.levels
  s2 = lv.step_size_sq[2] * (4 if n_steps == 1 else 1)
  grad = -a * (y + 1.0) / lv.step_size_sq[2] - (y - x_t) / lv.beta[2]
  got = cdrl.denoise_step(model, ev, y, x_t, jnp.full((2,), 2), n_steps)
  np.testing.assert_allclose(got, y + s2 * grad, rtol=1e-5)
  assert np.max(np.abs(got - y)) > 0.01  # the step really moves y


def test_final_denoise_ends_the_last_level_with_the_denoise_step():
  plain = mlp_model()
  model = dataclasses.replace(plain, final_denoise=True)
  params, stats = init_all(model)
  ev = {'params': params['ebm'], 'batch_stats': stats['ebm']}
  key, num = jax.random.key(4), 6
  x, trace = jax.jit(lambda: cdrl.sample(model, ev, params['init'], key, num,
                                         (2,)))()
  x0, trace0 = jax.jit(lambda: cdrl.sample(plain, ev, params['init'], key,
                                           num, (2,)))()
  # Levels above the last are untouched; the last is the plain chain's end,
  # denoised given the same x_1.
  np.testing.assert_allclose(trace.levels[:-1], trace0.levels[:-1], rtol=1e-6)
  scale = plain.levels.y_scale[1]
  want = cdrl.denoise_step(plain, ev, scale * x0, trace0.levels[-2],
                           jnp.ones((num,), jnp.int32)) / scale
  np.testing.assert_allclose(x, want, rtol=1e-5, atol=1e-6)
  assert np.max(np.abs(x - x0)) > 1e-4

# Reference values for Algorithm 2's wiring: with K = 0 Langevin steps each
# level's chain returns its start, so the whole run is a hand-computable
# recursion over the proposals.

class AffineInit(nn.Module):
  """A deterministic initializer ``g(x_t) = 0.9 x_t + b``."""

  @nn.compact
  def __call__(self, x, logsnr, dropout_keys=None):
    del logsnr, dropout_keys
    b = self.param('b', nn.initializers.constant(0.25), x.shape[1:])
    return 0.9 * x + b


def _np_levels(model):
  """``y_scale_t`` and the proposal std ``sqrt(beta_tilde_t) y_scale_t``
  recomputed from ``abar`` alone (not from :class:`schedules.Levels`)."""
  abar = np.asarray(model.levels.abar, np.float64)
  num = len(abar) - 1
  scale, std = {}, {}
  for t in range(1, num + 1):
    alpha_sq = abar[t] / abar[t - 1]
    scale[t] = 1.0 if t == num else np.sqrt(alpha_sq)
    beta_tilde = (1 - abar[t - 1]) / (1 - abar[t]) * (1 - alpha_sq)
    std[t] = np.sqrt(beta_tilde) * scale[t]
  return scale, std


def _level_noise(key, num, shape, t):
  """The proposal noise and chain keys level ``t`` draws (see cdrl.sample)."""
  ex = rng.example_keys(key, 0, num)
  level_keys = jax.vmap(jax.random.fold_in, (0, None))(ex, t)
  k_init, k_chain = rng.split_each(level_keys, 2)
  return np.asarray(rng.per_example_normal(k_init, shape), np.float64)


@pytest.mark.parametrize('with_init', [False, True])
def test_level_recursion_matches_a_hand_computed_chain(with_init):
  levels = schedules.make_levels(schedules.cosine_abar(), 2e-3, 'one')
  model = cdrl.CDRLModel(MLPEnergy(width=8, mults=(1,), temb_dim=4),
                         AffineInit() if with_init else None, levels,
                         n_steps=0)
  ev = model.ebm.init(jax.random.key(0), jnp.zeros((2, 2)), jnp.zeros(2))
  ip = (model.initializer.init(jax.random.key(1), jnp.zeros((2, 2)),
                               jnp.zeros(2))['params'] if with_init else None)
  key, num = jax.random.key(5), 5
  x, trace = jax.jit(lambda ev, ip: cdrl.sample(model, ev, ip, key, num,
                                                (2,)))(ev, ip)
  scale, std = _np_levels(model)
  ex = rng.example_keys(key, 0, num)
  x_t = np.asarray(rng.per_example_normal(rng.split_each(ex, 2)[0], (2,)),
                   np.float64)
  want_levels, want_props = [], []
  for t in range(model.num_levels, 0, -1):  # level T first
    y0 = x_t
    if with_init:
      y0 = 0.9 * x_t + 0.25 + std[t] * _level_noise(key, num, (2,), t)
    want_props.append(y0 / scale[t])
    x_t = y0 / scale[t]  # K = 0: the chain returns its start
    want_levels.append(x_t)
  np.testing.assert_allclose(trace.proposals, np.stack(want_props), rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(trace.levels, np.stack(want_levels), rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(x, want_levels[-1], rtol=1e-5, atol=1e-6)
  # The figures are not trivially equal: the scales really act.
  assert np.max(np.abs(want_levels[-1] - want_levels[0])) > 0.1


def test_proposal_noise_is_sqrt_beta_tilde_times_scale_per_level():
  levels = schedules.make_levels(schedules.cosine_abar(), 2e-3, 'one')
  model = cdrl.CDRLModel(MLPEnergy(width=8, mults=(1,), temb_dim=4),
                         AffineInit(), levels, n_steps=0)
  ip = model.initializer.init(jax.random.key(1), jnp.zeros((2, 3)),
                              jnp.zeros(2))['params']
  _, std = _np_levels(model)
  num, x_t = 6, jnp.zeros((6, 3))
  keys = rng.example_keys(jax.random.key(2), 0, num)
  eps = np.asarray(rng.per_example_normal(keys, (3,)), np.float64)
  for t in range(1, model.num_levels + 1):
    y0 = cdrl.propose(model, ip, x_t, jnp.full((num,), t), keys)
    np.testing.assert_allclose(np.asarray(y0) - 0.25, std[t] * eps, rtol=1e-4,
                               atol=1e-6)
  # The levels' noise levels differ (so a wrong level index is seen).
  assert len({round(float(s), 4) for s in std.values()}) == model.num_levels


class LabelInit(nn.Module):
  """A conditional initializer whose mean is ``0.25 * label``."""

  @nn.compact
  def __call__(self, x, logsnr, label=None, dropout_keys=None):
    del logsnr, dropout_keys
    b = self.param('b', nn.initializers.constant(0.25), ())
    lab = jnp.ones(x.shape[:1]) if label is None else label
    return jnp.zeros_like(x) + b * lab.astype(x.dtype)[:, None]


def test_conditional_proposal_mean_is_the_weighted_sum_of_its_terms():
  levels = schedules.make_levels(schedules.cosine_abar(), 2e-3, 'one')
  model = cdrl.CDRLModel(MLPEnergy(width=8, mults=(1,), temb_dim=4),
                         LabelInit(), levels, n_steps=0, num_classes=3)
  ip = {'b': jnp.float32(0.25)}
  num, t = 4, 3
  keys = rng.example_keys(jax.random.key(5), 0, num)
  tt = jnp.full((num,), t)
  noise = cdrl.propose(model, ip, jnp.zeros((num, 2)), tt, keys,
                       conditioning.conditional(jnp.zeros(num, jnp.int32)))
  labels = jnp.full((num,), 2, jnp.int32)
  for cond, want in [
      (conditioning.conditional(labels), 0.5),             # 1 * 0.25 * 2
      (conditioning.Condition(labels[None], jnp.array([0.5])), 0.25),
      (conditioning.guided(labels, 2.0), 1.5)]:            # 3 * 0.5 - 2 * 0
    y0 = cdrl.propose(model, ip, jnp.zeros((num, 2)), tt, keys, cond)
    np.testing.assert_allclose(y0 - noise, want, rtol=1e-5)


def test_inpainting_clamps_the_chain_at_every_level():
  # The trace is taken before the final where(mask, obs, x): at every level
  # the known coordinates must be the noisy observation of that level,
  # x_{t-1} = sqrt(abar_{t-1}) obs + sqrt(1 - abar_{t-1}) eps, although the
  # chain (K = 3 noisy steps) moves every other coordinate.
  model = mlp_model()
  params, stats = init_all(model)
  ev = {'params': params['ebm'], 'batch_stats': stats['ebm']}
  num, key = 4, jax.random.key(9)
  obs = jax.random.uniform(jax.random.key(1), (num, 2), minval=-1, maxval=1)
  mask = np.array([[True, False], [False, True], [True, False],
                   [False, False]])
  x, trace = jax.jit(lambda ev, ip, m, o: cdrl.sample(
      model, ev, ip, key, num, (2,), inpaint=(m, o)))(
          ev, params['init'], jnp.asarray(mask), obs)
  obs_eps = np.asarray(rng.per_example_normal(
      rng.split_each(rng.example_keys(key, 0, num), 2)[1], (2,)))
  abar = np.asarray(model.levels.abar, np.float64)
  levels, props = np.asarray(trace.levels), np.asarray(trace.proposals)
  for i, t in enumerate(range(model.num_levels, 0, -1)):
    known = (np.sqrt(abar[t - 1]) * np.asarray(obs) +
             np.sqrt(1 - abar[t - 1]) * obs_eps)
    np.testing.assert_allclose(levels[i][mask], known[mask], rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(props[i][mask], known[mask], rtol=1e-5,
                               atol=1e-6)
    # the unknown coordinates were moved by the chain
    assert np.all(np.abs(levels[i][~mask] - props[i][~mask]) > 1e-6)
  np.testing.assert_array_equal(np.asarray(x)[mask], np.asarray(obs)[mask])
