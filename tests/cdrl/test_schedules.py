"""Schedules against the table of docs/algorithms.md (section 2.1) and direct formulas."""

import numpy as np
import pytest

from coopjax.cdrl import schedules


def test_cosine_table_values():
  levels = schedules.make_levels(schedules.cosine_abar(6, -5.1, 9.8))
  np.testing.assert_allclose(
      levels.abar, [.99994, .936, .768, .535, .294, .102, .0061], atol=6e-4)
  np.testing.assert_allclose(
      levels.logsnr, [9.8, 2.69, 1.20, 0.14, -0.88, -2.17, -5.1], atol=6e-3)


def test_per_level_quantities_match_definitions():
  abar = schedules.cosine_abar()
  lv = schedules.make_levels(abar, step_const=4e-4, ct_mode='sigma')
  for t in range(1, 7):
    a_s = abar[t] / abar[t - 1]
    beta = 1 - a_s
    np.testing.assert_allclose(lv.alpha_sq[t], a_s, rtol=1e-5)
    np.testing.assert_allclose(lv.beta[t], beta, rtol=1e-5)
    np.testing.assert_allclose(
        lv.beta_tilde[t], (1 - abar[t - 1]) / (1 - abar[t]) * beta, rtol=1e-5)
    c = np.sqrt(1 - abar[t - 1]) / np.sqrt(1 - 1 / (1 + np.exp(-9.8)))
    np.testing.assert_allclose(lv.step_mult[t], c, rtol=1e-4)
    np.testing.assert_allclose(lv.step_size_sq[t], 4e-4 * c * beta, rtol=1e-4)
    np.testing.assert_allclose(lv.loss_weight[t],
                               np.sqrt(lv.beta[1] / beta), rtol=1e-5)
  # Top level: a marginal EBM on x_{T-1} (scale 1, no tie term).
  assert lv.y_scale[6] == 1.0 and lv.tie_mask[6] == 0.0
  np.testing.assert_allclose(lv.y_scale[1:6], np.sqrt(lv.alpha_sq[1:6]))
  assert np.all(lv.tie_mask[1:6] == 1.0)
  np.testing.assert_allclose(lv.proposal_std[3],
                             np.sqrt(lv.beta_tilde[3] * lv.alpha_sq[3]),
                             rtol=1e-5)
  assert lv.step_mult[1] == pytest.approx(1.0, rel=1e-4)


def test_toy_ct_modes():
  abar = schedules.cosine_abar()
  ref = schedules.make_levels(abar, 2e-3, 'inv_sigma0')
  np.testing.assert_allclose(ref.step_mult[1:], 1 / np.sqrt(1 - abar[0]), rtol=1e-4)
  one = schedules.make_levels(abar, 2e-3, 'one')
  np.testing.assert_allclose(one.step_size_sq[1:], 2e-3 * one.beta[1:], rtol=1e-5)


def test_drl_linear_schedule():
  abar = schedules.drl_linear_abar()
  betas = np.linspace(1e-4, 0.02, 1000)
  assert abar[0] == pytest.approx(1 - 1e-4)
  assert abar[3] == pytest.approx(np.prod(1 - betas[:301]))
  assert len(abar) == 7


def test_bad_inputs():
  with pytest.raises(ValueError, match='ct_mode'):
    schedules.make_levels(schedules.cosine_abar(), ct_mode='nope')
  with pytest.raises(ValueError, match='decreasing'):
    schedules.make_levels(np.array([0.5, 0.9]))


def test_cosine_logsnr_defaults_are_the_papers_end_points():
  np.testing.assert_allclose(schedules.cosine_logsnr(np.array([0.0, 1.0])),
                             [9.8, -5.1], rtol=1e-12)


def test_two_levels_are_the_fewest_accepted():
  assert schedules.make_levels(np.array([0.9, 0.5])).num_levels == 1
  with pytest.raises(ValueError, match='decreasing'):
    schedules.make_levels(np.array([0.9]))


def test_index_input_makes_the_embedding_see_the_integer():
  index = np.array([1, 2, 7, 500, 999])
  l = schedules.index_input(index)
  np.testing.assert_allclose(
      l, -2.0 * np.log(np.tan(np.pi * index / 2000.0)), rtol=1e-6)
  # the networks' embedding argument 1000 arctan(exp(-l / 2)) / (pi / 2)
  np.testing.assert_allclose(
      1000.0 * np.arctan(np.exp(-l.astype(np.float64) / 2)) / (np.pi / 2),
      index, rtol=1e-5)
  for bad in (0, 1000):
    with pytest.raises(ValueError, match='1..999'):
      schedules.index_input(np.array([bad]))


def test_network_input_per_level_input_kind():
  levels = schedules.make_levels(schedules.cosine_abar(6))
  np.testing.assert_array_equal(schedules.network_input(levels, 'logsnr'),
                                levels.logsnr.astype(np.float32))
  np.testing.assert_array_equal(schedules.network_input(levels, 'index'),
                                schedules.index_input(np.arange(1, 8)))
  with pytest.raises(ValueError, match='level input'):
    schedules.network_input(levels, 'nope')


def test_levels_from_config_equals_the_direct_construction():
  import ml_collections  # pylint: disable=g-import-not-at-top
  cfg = ml_collections.ConfigDict(dict(
      kind='cosine', num_levels=4, logsnr_min=-4.0, logsnr_max=8.0,
      step_const=1e-3, ct_mode='one'))
  got = schedules.levels_from_config(cfg)
  want = schedules.make_levels(schedules.cosine_abar(4, -4.0, 8.0), 1e-3, 'one')
  for a, b in zip(got, want):
    np.testing.assert_array_equal(a, b)
  cfg.kind, cfg.num_levels = 'drl_linear', 6
  np.testing.assert_allclose(schedules.levels_from_config(cfg).abar,
                             schedules.drl_linear_abar(), rtol=1e-6)
  cfg.num_levels = 5
  with pytest.raises(ValueError, match='6 levels'):
    schedules.levels_from_config(cfg)
  cfg.kind = 'linear'
  with pytest.raises(ValueError, match='kind'):
    schedules.levels_from_config(cfg)
