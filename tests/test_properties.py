"""Property-based tests (hypothesis) where a property is the specification:
TV is a metric, process batches partition the global batch, masks hide what
they say, guidance and composition coefficients sum to one, schedule
invariants, flow inverse and log-determinant, clamped chain coordinates.

Few examples each (the functions under test are jitted once; hypothesis
draws the inputs), no deadline: CPU compile times vary.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from coopjax import metrics
from coopjax.cdrl import conditioning, schedules
from coopjax.data import batching, masks
from coopjax.flows import DenseFlow
from coopjax.samplers import langevin as langevin_lib

FEW = settings(max_examples=25, deadline=None)
VERY_FEW = settings(max_examples=6, deadline=None)


def _subprob(values):
  """Non-negative bins summing to at most 1 (the rest is mass outside)."""
  v = np.abs(np.asarray(values, np.float64))
  return v / max(v.sum(), 1e-12) * 0.9 if v.sum() > 1 else v


bins = hnp.arrays(np.float64, 6, elements=st.floats(0, 1))


@FEW
@given(bins, bins, bins)
def test_tv_is_a_metric(a, b, c):
  p, q, r = _subprob(a), _subprob(b), _subprob(c)
  tv = metrics.tv_distance
  assert tv(p, p) == 0.0
  assert tv(p, q) == tv(q, p)
  assert tv(p, r) <= tv(p, q) + tv(q, r) + 1e-12
  if not np.allclose(p, q, atol=1e-9):
    assert tv(p, q) > 0
  assert 0.0 <= tv(p, q) <= 1.0


@FEW
@given(n=st.integers(8, 200), step=st.integers(0, 10 ** 6),
       seed=st.integers(0, 2 ** 31), procs=st.sampled_from([1, 2, 4, 8]),
       per=st.integers(1, 8))
def test_process_batches_are_disjoint_and_cover_the_global_batch(
    n, step, seed, procs, per):
  batch = min(procs * per, n - n % procs)
  parts = [batching.local_indices(n, step, batch, seed, i, procs)
           for i in range(procs)]
  whole = batching.local_indices(n, step, batch, seed)
  assert all(len(p) == batch // procs for p in parts)
  joined = np.concatenate(parts)
  assert len(set(joined.tolist())) == batch  # disjoint, no repeats
  np.testing.assert_array_equal(joined, whole)  # cover, in order
  assert joined.min() >= 0 and joined.max() < n


@VERY_FEW
@given(h=st.integers(2, 12), w=st.integers(2, 12), c=st.integers(1, 3),
       kind=st.sampled_from(['square', 'half']))
def test_masks_hide_exactly_what_they_say(h, w, c, kind):
  m = masks.make(kind, (2, h, w, c))
  hidden = np.zeros((h, w), bool)
  if kind == 'square':
    hidden[h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2] = True
  else:
    hidden[h // 2:] = True
  np.testing.assert_array_equal(~m, np.broadcast_to(hidden[None, :, :, None],
                                                    m.shape))
  x = np.random.default_rng(h * w).normal(size=m.shape)
  s = masks.shown(x, m)
  np.testing.assert_array_equal(s[m], x[m])
  assert np.all(np.isnan(s[~m]))  # hidden pixels: drawn as the mask colour
  figures = masks.fill_figures(np.where(m, x, 0.0), x, m)
  assert figures['known_pixels_changed'] == 0.0
  changed = np.where(m, x + 1.0, x)
  assert masks.fill_figures(changed, x, m)['known_pixels_changed'] == m.sum()


@FEW
@given(seed=st.integers(0, 2 ** 31), h=st.integers(4, 16))
def test_free_masks_are_deterministic_per_seed_and_per_channel(seed, h):
  m = masks.make('free', (3, h, h, 2), seed)
  np.testing.assert_array_equal(m, masks.make('free', (3, h, h, 2), seed))
  np.testing.assert_array_equal(m[..., 0], m[..., 1])
  assert (~m).any()


@FEW
@given(w=st.floats(0, 10), n=st.integers(1, 3), b=st.just(3))
def test_guidance_and_composition_coefficients_sum_to_one(w, n, b):
  labels = jnp.arange(b) % 3 + 1
  g = conditioning.guided(labels, w)
  np.testing.assert_allclose(float(jnp.sum(g.coefs)), 1.0, rtol=1e-5)
  assert g.labels.shape == (2, b) and np.all(np.asarray(g.labels[1]) == 0)
  c = conditioning.composed(jnp.tile(labels, (n, 1)), w)
  np.testing.assert_allclose(float(jnp.sum(c.coefs)), 1.0, rtol=1e-5,
                             atol=1e-5)
  assert c.labels.shape == (n + 1, b) and np.all(np.asarray(c.labels[0]) == 0)
  one = conditioning.composed(labels[None], w)  # one concept is guidance
  np.testing.assert_allclose(one.coefs, g.coefs[::-1], rtol=1e-6, atol=1e-6)


@FEW
@given(num=st.integers(1, 12), lo=st.floats(-8, -1), hi=st.floats(2, 12),
       mode=st.sampled_from(schedules.CT_MODES))
def test_schedule_invariants(num, lo, hi, mode):
  lv = schedules.make_levels(schedules.cosine_abar(num, lo, hi), 2e-3, mode)
  abar = lv.abar.astype(np.float64)
  assert lv.num_levels == num
  assert np.all(np.diff(abar) < 0) and np.all((abar > 0) & (abar < 1))
  t = slice(1, None)
  assert np.all((lv.beta[t] > 0) & (lv.beta[t] < 1))
  assert np.all(lv.beta_tilde[t] <= lv.beta[t] * (1 + 1e-6))
  np.testing.assert_allclose(lv.alpha_sq[t] * abar[:-1], abar[1:], rtol=1e-5)
  assert lv.y_scale[num] == 1.0 and lv.tie_mask[num] == 0.0
  np.testing.assert_array_equal(lv.tie_mask[1:num], 1.0)
  np.testing.assert_allclose(lv.y_scale[1:num], np.sqrt(lv.alpha_sq[1:num]),
                             rtol=1e-6)
  np.testing.assert_allclose(lv.proposal_std[t],
                             np.sqrt(lv.beta_tilde[t]) * lv.y_scale[t],
                             rtol=1e-5)
  np.testing.assert_allclose(lv.loss_weight[1], 1.0, rtol=1e-6)
  assert np.all(lv.step_size_sq[t] > 0)
  # entry 0 is padding: a copy of entry 1
  for v in (lv.beta, lv.y_scale, lv.step_size_sq, lv.proposal_std):
    assert v[0] == v[1]


FLOW = DenseFlow(features=3, num_steps=2, hidden=8)


@functools.lru_cache(maxsize=None)
def _flow_fns():
  init = jax.jit(FLOW.init)
  fwd = jax.jit(lambda v, x: FLOW.apply(v, x, method=DenseFlow.forward))
  inv = jax.jit(lambda v, z: FLOW.apply(v, z, method=DenseFlow.inverse))

  def single(v, x):
    return FLOW.apply(v, x[None], method=DenseFlow.forward)[0][0]

  jac = jax.jit(jax.vmap(jax.jacfwd(single, argnums=1), (None, 0)))
  return init, fwd, inv, jac


@VERY_FEW
@given(seed=st.integers(0, 2 ** 31 - 1), scale=st.floats(0.1, 3.0))
def test_flow_inverse_and_log_det_over_seeds(seed, scale):
  init, fwd, inv, jac = _flow_fns()
  x = scale * jax.random.normal(jax.random.key(seed), (5, 3))
  v = init(jax.random.key(seed + 1), x)
  z, logdet = fwd(v, x)
  np.testing.assert_allclose(inv(v, z), x, rtol=1e-4, atol=1e-4 * scale)
  np.testing.assert_allclose(logdet, jnp.linalg.slogdet(jac(v, x))[1],
                             rtol=1e-4, atol=1e-4)


def _log_prob(x, centre):
  return -0.5 * jnp.sum((x - centre) ** 2, axis=-1)


@functools.lru_cache(maxsize=None)
def _chain():
  return jax.jit(lambda x0, keys, mask, values: langevin_lib.langevin(
      _log_prob, x0, keys, n_steps=5, step_size=0.3, clamp=(mask, values),
      args=(jnp.ones(3),))[0])


@VERY_FEW
@given(seed=st.integers(0, 2 ** 31 - 1),
       mask=hnp.arrays(bool, (4, 3)), row=st.integers(0, 3))
def test_clamped_coordinates_stay_fixed_and_rows_are_independent(seed, mask,
                                                                 row):
  key = jax.random.key(seed)
  x0 = jax.random.normal(key, (4, 3))
  keys = jax.random.split(jax.random.fold_in(key, 1), 4)
  values = jax.random.normal(jax.random.fold_in(key, 2), (4, 3))
  x = np.asarray(_chain()(x0, keys, jnp.asarray(mask), values))
  np.testing.assert_array_equal(x[mask], np.asarray(values)[mask])
  assert np.all(x[~mask] != np.asarray(x0)[~mask])  # the rest moved
  # changing one row's start changes no other row
  x0b = x0.at[row].add(5.0)
  xb = np.asarray(_chain()(x0b, keys, jnp.asarray(mask), values))
  others = np.arange(4) != row
  np.testing.assert_array_equal(xb[others], x[others])
