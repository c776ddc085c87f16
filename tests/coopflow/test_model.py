"""coopjax.coopflow.model: the revision step and proposals mapped into the box."""

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import coopflow
from coopjax.models.mlp import MLPEnergy

from helpers.coopflow_models import point_model, init


@pytest.mark.slow
def test_revision_is_the_clipped_drift_ascent():
  model = point_model(n_steps=4, step_size=1.0, clip_drift=0.1,
                      clip_x=(-1.0, 1.0))
  x0 = jax.random.uniform(jax.random.key(1), (64, 2), minval=-1.5, maxval=1.5)
  params = init(model, x0)
  x_k, _ = coopflow.refine(model, params['ebm'], x0, jax.random.key(2))
  grad = jax.grad(lambda x: coopflow.energy(model, params['ebm'], x).sum())
  x, clipped = jnp.clip(x0, -10, 10), []
  for _ in range(4):
    drift = 0.5 * grad(x)
    clipped.append(jnp.abs(drift) > 0.1)
    x = jnp.clip(x + jnp.clip(drift, -0.1, 0.1), -1.0, 1.0)
  np.testing.assert_allclose(x_k, x, atol=1e-6)
  clipped = jnp.stack(clipped)
  assert clipped.any() and not clipped.all()  # both regimes exercised
  assert float(jnp.abs(x_k).max()) <= 1.0


class _OverflowingFlow(flax.linen.Module):
  """A stand-in flow whose inverse overflows: +inf, -inf, NaN and 0.25."""

  def inverse(self, z):
    values = jnp.array([jnp.inf, -jnp.inf, jnp.nan, 0.25])
    return jnp.broadcast_to(values, z.shape)


@pytest.mark.parametrize('clip_x,expected', [
    ((-1.0, 3.0), [3.0, -1.0, 1.0, 0.25]),   # edges, centre, kept
    (None, [np.inf, -np.inf, np.nan, 0.25]),  # no box: untouched
])
def test_overflowing_proposals_are_mapped_into_the_box(clip_x, expected):
  model = coopflow.CoopFlowModel(
      ebm=MLPEnergy(width=8, mults=(1,), temb_dim=4, use_sn=False),
      flow=_OverflowingFlow(), example_shape=(4,), clip_x=clip_x)
  x0 = coopflow.propose(model, {}, jnp.zeros((2, 4)))
  np.testing.assert_array_equal(np.asarray(x0), np.tile(expected, (2, 1)))


def test_flowpp_log_prob_takes_its_noise_from_keys_and_dropout_in_training():
  import functools
  from coopjax.flows.flowpp import FlowPlusPlus
  model = coopflow.CoopFlowModel(
      ebm=None, example_shape=(4, 4, 1),
      flow=FlowPlusPlus((4, 4, 1), scales=((0, 1),), mid_channels=4,
                        num_blocks=1, num_components=3, use_attn=False,
                        num_dequant_blocks=0, dropout=0.5))
  x = jnp.asarray(np.random.default_rng(0).integers(0, 256, (3, 4, 4, 1))
                  / 127.5 - 1, jnp.float32)
  key = jax.random.key(0, impl='unsafe_rbg')
  params = jax.jit(model.flow.init)({'params': key, 'dequant': key},
                                    x)['params']
  keys = jax.random.split(key, 3)

  @functools.partial(jax.jit, static_argnums=2)
  def log_p(p, ks, train):
    return coopflow.flow_log_prob(model, p, x, ks, train)

  a, b = log_p(params, keys, False), log_p(params, keys, False)
  np.testing.assert_array_equal(a, b)  # the same keys, the same noise
  assert not np.allclose(a, log_p(params, keys[::-1], False))
  assert not np.allclose(a, log_p(params, keys, True))  # dropout
  assert np.all(np.isfinite(a))
