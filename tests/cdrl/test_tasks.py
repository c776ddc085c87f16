"""Guidance, composition, inpainting and OOD scores: their defining properties
on a labelled quadratic energy whose answers are known in closed form."""

import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import cdrl, metrics, rng
from coopjax.cdrl import conditioning, schedules
from coopjax.cdrl.algorithm import CDRLAlgorithm
from coopjax.data import masks

from helpers import load_config

DIM = 8  # 2 x 2 x 2 "images"
SHAPE = (2, 2, 2)
CLASSES = 3


class LabelledQuadratic(nn.Module):
  """``f(y | c) = -a/2 ||y - m_c||^2``; the features carry the centre m_c."""
  a: float = 1.0

  def setup(self):
    init = lambda k, s: jax.random.normal(k, s)
    self.centres = self.param('centres', init, (CLASSES + 1, DIM))

  def time_features(self, logsnr, update_stats=False, label=None):
    del update_stats
    if label is None:
      label = jnp.zeros(logsnr.shape, jnp.int32)
    return (self.centres[label] + 0.0 * logsnr[:, None],)

  def energy(self, x, features, update_stats=False):
    del update_stats
    return -0.5 * self.a * jnp.sum((x.reshape(x.shape[0], -1) -
                                    features[0]) ** 2, axis=-1)

  def __call__(self, x, logsnr, update_stats=False, label=None):
    return self.energy(x, self.time_features(logsnr, label=label))


class ShrinkInit(nn.Module):
  """A conditional initializer ``g(x_t | c) = 0.9 x_t + b_c``."""

  @nn.compact
  def __call__(self, x, logsnr, label=None):
    del logsnr
    b = self.param('b', nn.initializers.normal(0.1), (CLASSES + 1,) + SHAPE)
    label = jnp.zeros(x.shape[:1], jnp.int32) if label is None else label
    return 0.9 * x + b[label]


def make_model(initializer=True, n_steps=4):
  levels = schedules.make_levels(schedules.cosine_abar(), 4e-4, 'sigma')
  model = cdrl.CDRLModel(LabelledQuadratic(a=2e-3), ShrinkInit()
                         if initializer else None, levels, n_steps,
                         num_classes=CLASSES, label_drop=0.0)
  x = jnp.zeros((2,) + SHAPE)
  ev = model.ebm.init(jax.random.key(0), x, jnp.zeros(2))
  ip = model.initializer.init(jax.random.key(1), x, jnp.zeros(2))['params'] \
      if initializer else None
  return model, ev, ip


def draw(model, ev, ip, cond=None, inpaint=None, num=6, key=3):
  return cdrl.sample(model, ev, ip, jax.random.key(key), num, SHAPE,
                     cond=cond, inpaint=inpaint)[0]


@pytest.mark.slow
def test_guidance_weight_zero_is_plain_conditional_sampling():
  model, ev, ip = make_model()
  labels = jnp.array([1, 2, 3, 1, 2, 3])
  plain = draw(model, ev, ip, conditioning.conditional(labels))
  guided = draw(model, ev, ip, conditioning.guided(labels, 0.0))
  np.testing.assert_allclose(guided, plain, rtol=1e-5, atol=1e-5)
  other = draw(model, ev, ip, conditioning.guided(labels, 2.0))
  assert np.max(np.abs(np.asarray(other - plain))) > 1e-3


def test_one_concept_composed_equals_guided():
  model, ev, ip = make_model()
  labels = jnp.array([1, 2, 3, 1, 2, 3])
  guided = draw(model, ev, ip, conditioning.guided(labels, 0.7))
  composed = draw(model, ev, ip, conditioning.composed(labels[None], 0.7))
  np.testing.assert_allclose(composed, guided, rtol=1e-4, atol=1e-5)


def test_guided_density_is_the_closed_form_quadratic():
  # (1 + w) f(y|c) - w f(y|null) = -a/2 ||y - m||^2 + const with
  # m = (1 + w) m_c - w m_null: differences of log-densities must match.
  model, ev, _ = make_model()
  w, t = 1.5, 2
  centres = np.asarray(ev['params']['centres'])
  labels = jnp.array([2, 2])
  x = jax.random.normal(jax.random.key(5), (2,) + SHAPE)
  got = cdrl.log_density(model, ev, x, t, conditioning.guided(labels, w))
  m = (1 + w) * centres[2] - w * centres[0]
  lv = model.levels
  y = lv.y_scale[t] * np.asarray(x).reshape(2, -1)
  quadratic = -0.5 * 2e-3 * np.sum((y - m) ** 2, -1)
  direct = -0.5 * 2e-3 * ((1 + w) * np.sum((y - centres[2]) ** 2, -1) -
                          w * np.sum((y - centres[0]) ** 2, -1))
  np.testing.assert_allclose(np.asarray(got), direct / lv.step_size_sq[t],
                             rtol=1e-5)
  # and the quadratic in y has its centre at m (differences agree)
  np.testing.assert_allclose(np.diff(direct), np.diff(quadratic), rtol=1e-4)


@pytest.mark.parametrize('initializer', [True, False])
@pytest.mark.parametrize('kind', ['square', 'free'])
def test_inpainting_keeps_known_pixels_exactly(initializer, kind):
  model, ev, ip = make_model(initializer)
  obs = jax.random.uniform(jax.random.key(7), (6,) + SHAPE, minval=-1,
                           maxval=1)
  mask = masks.make(kind, (6,) + SHAPE, seed=1)
  mask[0] = False  # at least one example with unknowns everywhere
  mask[1, 0, 0] = True
  x = np.asarray(draw(model, ev, ip, inpaint=(jnp.asarray(mask), obs)))
  np.testing.assert_array_equal(x[mask], np.asarray(obs)[mask])
  assert np.all(np.abs(x[~mask] - np.asarray(obs)[~mask]) > 0)


def test_ood_score_self_is_half_and_separated_is_one():
  model, ev, _ = make_model(False)
  centre = np.asarray(ev['params']['centres'][0]).reshape(SHAPE)
  k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
  near = lambda k: centre + 0.5 * jax.random.normal(k, (3000,) + SHAPE)
  score = lambda x: np.asarray(cdrl.ood_score(model, ev, x))
  a, b = score(near(k1)), score(near(k2))
  far = score(centre + 5.0 + 0.5 * jax.random.normal(k3, (3000,) + SHAPE))
  assert abs(metrics.auroc(a, b) - 0.5) < 0.03
  assert metrics.auroc(a, far) > 0.99


def test_training_labels_drop_and_attributes():
  keys = rng.example_keys(jax.random.key(0), 0, 20000)
  lab = conditioning.training_labels(jnp.full((20000,), 4), keys, 0.1)
  assert abs(float(jnp.mean(lab == 0)) - 0.1) < 0.01
  assert set(np.unique(np.asarray(lab))) == {0, 5}
  attrs = jnp.tile(jnp.array([[1, 0, 1]]), (20000, 1))
  lab = np.asarray(conditioning.training_labels(attrs, keys, 0.0))
  # attribute i with value v is concept 1 + 2 i + v: here 2, 3, 6
  assert set(np.unique(lab)) == {2, 3, 6}


@pytest.mark.slow
def test_conditional_ebm_gradient_only_reaches_used_classes():
  model, ev, ip = make_model()
  params = {'ebm': ev['params'], 'init': ip}
  batch = {'x': jax.random.normal(jax.random.key(2), (8,) + SHAPE),
           'label': jnp.array([0, 1, 0, 1, 0, 1, 0, 1])}  # classes 0, 1 -> 1, 2
  keys = rng.example_keys(jax.random.key(4), 0, 8)
  grads, _, metrics_ = cdrl.loss_and_grads(model, params, {'ebm': {}},
                                           batch, keys)
  g = np.abs(np.asarray(grads['ebm']['centres'])).sum(-1)
  assert g[1] > 0 and g[2] > 0 and g[0] == 0 and g[3] == 0
  gb = np.abs(np.asarray(grads['init']['b'])).reshape(CLASSES + 1, -1).sum(-1)
  assert gb[1] > 0 and gb[2] > 0 and gb[3] == 0
  assert np.isfinite(float(metrics_['ebm_loss']))


def test_composed_energy_and_proposal_equal_direct_computation():
  model, ev, ip = make_model()
  w, t = 1.0, 2
  concepts = jnp.array([[1, 1], [2, 3], [3, 2]])  # 3 concepts per example
  cond = conditioning.composed(concepts, w)
  x = jax.random.normal(jax.random.key(5), (2,) + SHAPE)
  y = model.levels.y_scale[t] * x
  f = lambda lab: model.ebm.apply(ev, y, jnp.zeros(2), label=lab)
  direct = f(jnp.zeros(2, jnp.int32)) + sum(
      (1 + w) * (f(c) - f(jnp.zeros(2, jnp.int32))) for c in concepts)
  got = cdrl.log_density(model, ev, x, t, cond) * model.levels.step_size_sq[t]
  np.testing.assert_allclose(got, direct, rtol=1e-5)

  # A conditional initializer proposes the average of the concepts' guided
  # means (the noise is the same draw for every condition).
  g = lambda lab: model.initializer.apply({'params': ip}, x, jnp.zeros(2),
                                          label=jnp.asarray(lab))
  null = jnp.zeros(2, jnp.int32)
  tt, keys = jnp.full((2,), t), rng.example_keys(jax.random.key(1), 0, 2)
  mean_minus_null = (cdrl.propose(model, ip, x, tt, keys, cond) -
                     cdrl.propose(model, ip, x, tt, keys,
                                  conditioning.conditional(null)))
  want = sum((1 + w) * g(c) - w * g(null) for c in concepts) / 3 - g(null)
  np.testing.assert_allclose(mean_minus_null, want, rtol=1e-5, atol=1e-6)
  # not the EBM's weights, which extrapolate: -5 g(null) + 2 sum g(c_i)
  extrapolated = -5 * g(null) + 2 * sum(g(c) for c in concepts) - g(null)
  assert np.max(np.abs(np.asarray(extrapolated - want))) > 0.05
  np.testing.assert_allclose(float(jnp.sum(cond.init_coefs)), 1.0, rtol=1e-6)


def test_unconditional_initializer_proposes_the_same_for_every_condition():
  levels = schedules.make_levels(schedules.cosine_abar(), 4e-4, 'sigma')
  model = cdrl.CDRLModel(LabelledQuadratic(a=2e-3), ShrinkInit(), levels, 2,
                         num_classes=CLASSES, init_conditional=False)
  _, _, ip = make_model()
  x = jax.random.normal(jax.random.key(5), (2,) + SHAPE)
  tt, keys = jnp.full((2,), 3), rng.example_keys(jax.random.key(1), 0, 2)
  plain = cdrl.propose(model, ip, x, tt, keys)
  composed = cdrl.propose(model, ip, x, tt, keys, conditioning.composed(
      jnp.array([[1, 1], [2, 2], [3, 3]]), 1.0))
  np.testing.assert_array_equal(composed, plain)


def test_compose_config_is_the_papers_set_up():
  c = load_config('celeba_compose')
  assert (c.model.num_classes, c.model.init_conditional) == (6, False)
  assert (c.model.width, tuple(c.model.mults), c.model.blocks_per_res) == (
      128, (1, 2, 2, 2, 2), 2)
  assert c.model.init_width == 64 and set(c.model.init_mults) == {1}
  c.model.update(width=8, mults=(1,), temb_dim=8, init_width=32,
                 init_mults=(1,), init_blocks=1, init_attn=())
  data = types.SimpleNamespace(example_shape=(8, 8, 3), kind='images',
                               name='celeb_a', num_classes=0,
                               attributes=('Male', 'Smiling', 'Young'))
  algo = CDRLAlgorithm(c, data)
  assert algo.model.ebm.num_classes == 6
  assert algo.model.initializer.num_classes == 0
  params, _ = jax.eval_shape(algo.init_variables, jax.random.key(0), None)
  assert set(params) == {'ebm', 'init'}
