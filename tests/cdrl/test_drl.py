"""The DRL baseline as the authors' code (ruiqigao/recovery_likelihood):
independent pair noise, the integer level input, the sampling noise scale,
and the published settings of the ``:drl`` variants."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import cdrl, rng
from coopjax.cdrl import schedules
from coopjax.cdrl.model import level_features
from coopjax.models.embedding import logsnr_embedding, sinusoidal_embedding

from helpers import load_config
from helpers.cdrl_models import QuadraticEnergy, toy_levels

LEVELS = toy_levels()


def _pair_noises(pair_noise, n=2000):
  """The two standard-normal draws behind each training pair, recovered."""
  model = cdrl.CDRLModel(QuadraticEnergy(), None, LEVELS, 2,
                         pair_noise=pair_noise)
  x = jax.random.normal(jax.random.key(0), (n, 2))
  t, x_t, y_data = cdrl.training_pairs(
      model, x, rng.example_keys(jax.random.key(1), 0, n))
  t, x, x_t = np.asarray(t), np.asarray(x, np.float64), np.asarray(x_t)
  lv = LEVELS
  col = lambda v, i=t: np.asarray(v, np.float64)[i][:, None]
  x_prev = np.asarray(y_data, np.float64) / col(lv.y_scale)
  abar_prev = col(lv.abar, t - 1)
  eps_prev = (x_prev - np.sqrt(abar_prev) * x) / np.sqrt(1 - abar_prev)
  step = (x_t - np.sqrt(col(lv.alpha_sq)) * x_prev) / np.sqrt(col(lv.beta))
  return t, eps_prev, step, x_t, x


def test_drl_pairs_use_independent_noise_cdrl_pairs_one_draw():
  _, e_prev, e_step, x_t, x = _pair_noises('independent')
  # 4000 values: the correlation's standard error is 0.016.
  assert abs(np.corrcoef(e_prev.ravel(), e_step.ravel())[0, 1]) < 0.06
  assert np.std(e_step) == pytest.approx(1.0, abs=0.05)
  # CDRL's variance reduction: at each level the step's noise is a
  # multiple of the one draw.
  t, e_prev, e_step, _, _ = _pair_noises('shared')
  for level in range(1, 7):
    at = t == level
    assert np.corrcoef(e_prev[at].ravel(), e_step[at].ravel())[0, 1] > 0.999


def test_drl_pairs_have_the_marginal_of_level_t():
  t, _, _, x_t, x = _pair_noises('independent')
  abar = np.asarray(LEVELS.abar, np.float64)[t][:, None]
  eps_t = (x_t - np.sqrt(abar) * x) / np.sqrt(1 - abar)
  assert np.std(eps_t) == pytest.approx(1.0, abs=0.05)
  assert abs(np.mean(eps_t)) < 0.05


def test_unknown_pair_noise_or_level_input_is_refused():
  with pytest.raises(ValueError, match='pair_noise'):
    cdrl.CDRLModel(QuadraticEnergy(), None, LEVELS, 2, pair_noise='same')
  with pytest.raises(ValueError, match='level input'):
    cdrl.CDRLModel(QuadraticEnergy(), None, LEVELS, 2, level_input='time')


def test_drl_network_input_embeds_the_integer_level():
  model = cdrl.CDRLModel(QuadraticEnergy(), None, LEVELS, 2,
                         level_input='index')
  t = jnp.arange(1, 7)
  ev = model.ebm.init(jax.random.key(0), jnp.zeros((1, 2)), jnp.zeros(1))
  # QuadraticEnergy's features are its noise-level input itself.
  fed = level_features(model, ev, t)[0][:, 0]
  np.testing.assert_allclose(
      logsnr_embedding(fed, 128),
      sinusoidal_embedding(t.astype(jnp.float32), 128, scale=1.0), atol=2e-5)
  # CDRL feeds logSNR_{t-1} instead.
  cdrl_model = cdrl.CDRLModel(QuadraticEnergy(), None, LEVELS, 2)
  np.testing.assert_allclose(level_features(cdrl_model, ev, t)[0][:, 0],
                             LEVELS.logsnr[:-1], rtol=1e-6)
  with pytest.raises(ValueError, match='1..999'):
    schedules.index_input(np.arange(0, 3))


def test_sampling_chains_use_the_sample_noise_scale():
  # Algorithm 2 with one level by hand: DRL's chain starts at x_T itself.
  levels = schedules.make_levels(np.array([0.99, 0.5]), 2e-3, 'one')
  model = cdrl.CDRLModel(QuadraticEnergy(a=0.5), None, levels, 2,
                         sample_noise=0.37)
  ev = model.ebm.init(jax.random.key(0), jnp.zeros((1, 2)), jnp.zeros(1))
  key = jax.random.key(4)
  x, _ = cdrl.sample(model, ev, None, key, 5, (2,))
  ex_keys = rng.example_keys(key, 0, 5)
  x_top = rng.per_example_normal(rng.split_each(ex_keys, 2)[0], (2,))
  chain_keys = rng.split_each(
      jax.vmap(jax.random.fold_in, (0, None))(ex_keys, 1), 2)[1]
  one = jnp.ones((5,), jnp.int32)
  want, _ = cdrl.refine(model, ev, x_top, x_top, one, chain_keys,
                        noise_scale=0.37)
  np.testing.assert_allclose(x, want, rtol=1e-5, atol=1e-6)
  other, _ = cdrl.refine(model, ev, x_top, x_top, one, chain_keys)
  assert np.max(np.abs(np.asarray(other - want))) > 1e-3


def _authors_schedule():
  """sigma_t, a_t of the authors' get_sigma_schedule (T = 6), in numpy."""
  betas = np.append(np.linspace(1e-4, 0.02, 1000), 1.0)
  sqrt_alphas = np.sqrt(1 - betas)
  idx = np.r_[np.arange(6) * (1000 // 10), 999]
  a_s = np.r_[np.prod(sqrt_alphas[:idx[0] + 1]),
              [np.prod(sqrt_alphas[idx[i - 1] + 1:idx[i] + 1])
               for i in range(1, 7)]]
  return np.sqrt(1 - a_s ** 2), a_s


@pytest.mark.parametrize('name', ['cifar10', 'digits'])
def test_drl_variant_has_the_published_settings(name):
  c = load_config(name, 'drl')
  assert c.algorithm == 'drl' and c.model.initializer == 'none'
  assert (c.model.langevin_steps, c.model.tweedie) == (30, False)
  assert (c.model.level_input, c.model.pair_noise) == ('index', 'independent')
  assert c.model.sample_noise == 0.99
  # the DRL authors' network, its embedding as wide as its first stage
  assert (c.model.arch, c.model.attn) == ('drl', ())
  assert c.model.temb_dim == c.model.width
  assert (c.schedule.kind, c.schedule.step_const) == ('drl_linear', 2e-4)
  assert (c.optim.ebm.warmup, c.optim.ebm.warmup_offset,
          c.optim.ebm.grad_clip) == (1000, 0, 0.0)
  assert c.train.ema == 0.999
  if name == 'cifar10':  # the authors' CIFAR-10 command and flag defaults
    assert (c.optim.ebm.lr, c.optim.ebm.b1, c.optim.ebm.b2) == (1e-4, 0.9,
                                                                0.999)
    assert (c.data.batch_size, c.model.width, c.model.blocks_per_res,
            c.model.temb_dim) == (256, 128, 8, 128)
    assert tuple(c.model.mults) == (1, 2, 2, 2) and c.data.random_flip
  # Every per-level constant equals the authors' formulas.
  levels = schedules.levels_from_config(c.schedule)
  sigma, a_s = _authors_schedule()
  sigma_cum = np.sqrt(1 - np.cumprod(a_s) ** 2)
  np.testing.assert_allclose(levels.abar, np.cumprod(a_s) ** 2, rtol=1e-6)
  step_sq = sigma_cum[:-1] / sigma_cum[0] * 2e-4 * sigma[1:] ** 2
  np.testing.assert_allclose(levels.step_size_sq[1:], step_sq, rtol=1e-5)
  np.testing.assert_allclose(levels.loss_weight[1:], sigma[1] / sigma[1:],
                             rtol=1e-5)
  np.testing.assert_allclose(levels.y_scale[1:], np.r_[a_s[1:-1], 1.0],
                             rtol=1e-6)
