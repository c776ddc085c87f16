"""CoopFlow: the revision step, the two losses' gradients, freezing, the tasks'
defining properties, and the 2-D algorithm end to end through the trainer."""

import json
import os
import sys

import flax.linen
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from coopjax import coopflow, data, flows, registry, rng
from coopjax.trainer import loop as train
from coopjax.trainer import state as ts
from coopjax.models.convnet import ConvEnergy
from coopjax.models.mlp import MLPEnergy

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'configs'))
import coopflow_checkerboard  # pylint: disable=g-import-not-at-top,wrong-import-position
import coopflow_digits  # pylint: disable=g-import-not-at-top,wrong-import-position


def point_model(**kw):
  return coopflow.CoopFlowModel(
      ebm=MLPEnergy(width=8, mults=(1,), temb_dim=4, use_sn=False),
      flow=flows.DenseFlow(features=2, num_steps=2, hidden=8),
      example_shape=(2,), **kw)


def image_model(**kw):
  return coopflow.CoopFlowModel(
      ebm=ConvEnergy(width=4, mults=(1,)),
      flow=flows.GlowFlow(image_shape=(4, 4, 1), num_scales=1,
                          steps_per_scale=2, hidden=8, logit_alpha=0.05),
      example_shape=(4, 4, 1), **kw)


def init(model, x, seed=0):
  k1, k2 = jax.random.split(jax.random.key(seed))
  return {'ebm': model.ebm.init(k1, x, jnp.zeros(len(x)))['params'],
          'flow': model.flow.init(k2, x)['params']}


def images(n, seed=0):
  return jax.random.uniform(jax.random.key(seed), (n, 4, 4, 1), minval=-0.9,
                            maxval=0.9)


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


def test_gradients_are_those_of_the_two_losses_on_the_revised_samples():
  model = point_model(n_steps=3, step_size=0.5, clip_x=None)
  x = jax.random.normal(jax.random.key(3), (16, 2))
  params = init(model, x)
  keys = rng.example_keys(jax.random.key(4), 0, 16)
  grads, _, metrics = coopflow.loss_and_grads(model, params, {}, {'x': x},
                                              keys)
  k_z, k_chain, _ = rng.split_each(keys, 3)
  z = rng.per_example_normal(k_z, (2,))
  x_k, _ = coopflow.refine(model, params['ebm'],
                           coopflow.propose(model, params['flow'], z), k_chain)
  g_flow = jax.grad(lambda p: -jnp.mean(
      coopflow.flow_log_prob(model, p, x_k)))(params['flow'])
  g_ebm = jax.grad(lambda p: jnp.mean(coopflow.energy(model, p, x_k)) -
                   jnp.mean(coopflow.energy(model, p, x)))(params['ebm'])
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  jax.tree_util.tree_map(close, grads['flow'], g_flow)
  jax.tree_util.tree_map(close, grads['ebm'], g_ebm)
  np.testing.assert_allclose(metrics['flow_loss'], -jnp.mean(
      coopflow.flow_log_prob(model, params['flow'], x_k)), rtol=1e-5)
  # Pretraining: maximum likelihood on the data, no EBM gradient.
  grads, _, _ = coopflow.loss_and_grads(model, params, {}, {'x': x}, keys,
                                        pretrain_flow=True)
  assert set(grads) == {'flow'}
  jax.tree_util.tree_map(close, grads['flow'], jax.grad(lambda p: -jnp.mean(
      coopflow.flow_log_prob(model, p, x)))(params['flow']))


def test_flow_learns_from_dequantised_revised_samples_for_discrete_data():
  # With dequant_bins set, the flow's maximum likelihood sees the revised
  # samples re-binned (each uniform in its own bin), so samples the chain
  # clipped to the box edge do not form a point mass.
  model = image_model(n_steps=3, step_size=0.5, dequant_bins=17)
  x = images(8)
  params = init(model, x)
  keys = rng.example_keys(jax.random.key(5), 0, 8)
  grads, _, metrics = coopflow.loss_and_grads(model, params, {}, {'x': x},
                                              keys)
  k_z, k_chain, k_deq = rng.split_each(keys, 3)
  z = rng.per_example_normal(k_z, (model.latent_dim,))
  x_k, _ = coopflow.refine(model, params['ebm'],
                           coopflow.propose(model, params['flow'], z), k_chain)
  noisy = jax.vmap(lambda k, a: flows.uniform_dequantize(k, a, 17, snap=False))(
      k_deq, x_k)
  bin_of = lambda a: jnp.clip(jnp.floor((a + 1.0) * 8.5), 0, 16)
  np.testing.assert_array_equal(bin_of(noisy), bin_of(x_k))
  nll = lambda p: -jnp.mean(coopflow.flow_log_prob(model, p, noisy))
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  jax.tree_util.tree_map(close, grads['flow'], jax.grad(nll)(params['flow']))
  np.testing.assert_allclose(metrics['flow_loss'], nll(params['flow']),
                             rtol=1e-5)
  # The undequantised samples give a different loss: the noise is really there.
  assert abs(float(metrics['flow_loss']) + float(jnp.mean(
      coopflow.flow_log_prob(model, params['flow'], x_k)))) > 1e-3


def test_freeze_keeps_params_exactly_for_n_steps_then_trains():
  cfg = ml_collections.ConfigDict(dict(lr=0.1, b1=0.9, b2=0.999, warmup=0,
                                       freeze_steps=3))
  opt = ts.make_optimizer(cfg)
  params = {'w': jnp.arange(3.0)}
  state = opt.init(params)
  history = []
  for _ in range(4):
    updates, state = opt.update({'w': jnp.ones(3)}, state, params)
    params = optax.apply_updates(params, updates)
    history.append(np.asarray(params['w']))
  for h in history[:3]:
    np.testing.assert_array_equal(h, np.arange(3.0))
  assert np.all(history[3] < np.arange(3.0))
  with pytest.raises(ValueError, match='freeze_steps'):
    ts.make_optimizer(ml_collections.ConfigDict(dict(
        lr=0.1, b1=0.9, b2=0.999, warmup=0, freeze_steps=-1)))


def test_lr_after_replaces_the_learning_rate_from_its_step():
  cfg = ml_collections.ConfigDict(dict(lr=0.1, b1=0.9, b2=0.999, warmup=0,
                                       lr_after=0.01, lr_after_step=2))
  opt = ts.make_optimizer(cfg)
  params = {'w': jnp.zeros(())}
  state, moves = opt.init(params), []
  for _ in range(4):  # Adam on a constant gradient moves by lr per update
    updates, state = opt.update({'w': jnp.ones(())}, state, params)
    moves.append(-float(updates['w']))
  np.testing.assert_allclose(moves, [0.1, 0.1, 0.01, 0.01], rtol=1e-4)
  with pytest.raises(ValueError, match='lr_after'):
    ts.make_optimizer(ml_collections.ConfigDict(dict(
        lr=0.1, b1=0.9, b2=0.999, warmup=0, lr_after=-1.0, lr_after_step=2)))


def test_run_time_pretraining_switch_equals_the_two_static_computations():
  model = image_model(n_steps=2, step_size=0.5, dequant_bins=17)
  x = images(8)
  params = init(model, x)
  keys = rng.example_keys(jax.random.key(6), 0, 8)
  switched = jax.jit(lambda flag: coopflow.loss_and_grads(
      model, params, {}, {'x': x}, keys, pretrain_flow=flag))
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  for flag in (True, False):
    grads, _, metrics = switched(jnp.asarray(flag))
    ref, _, ref_metrics = coopflow.loss_and_grads(
        model, params, {}, {'x': x}, keys, pretrain_flow=flag)
    jax.tree_util.tree_map(close, grads['flow'], ref['flow'])
    assert float(metrics['pretraining']) == float(flag)
    close(metrics['flow_loss'], ref_metrics['flow_loss'])
    if flag:  # the EBM gets exactly zero while pretraining
      assert set(ref) == {'flow'}
      for leaf in jax.tree_util.tree_leaves(grads['ebm']):
        assert not np.any(np.asarray(leaf))
    else:
      jax.tree_util.tree_map(close, grads['ebm'], ref['ebm'])
      close(metrics['ebm_loss'], ref_metrics['ebm_loss'])


def test_reconstruction_lowers_the_mse_and_masks_only_use_known_pixels():
  model = image_model(n_steps=3, step_size=0.1)
  target = images(4)
  params = init(model, images(8, seed=1))
  z0 = jax.random.normal(jax.random.key(5), (4, 16))
  mask = jnp.asarray(np.arange(16).reshape(1, 4, 4, 1) % 3 != 0)
  fit = jax.jit(lambda t, m: coopflow.reconstruct(
      model, params, t, z0, jax.random.key(6), num_iters=30, lr=0.1, mask=m))
  z, x, losses = fit(target, jnp.ones_like(mask))
  assert float(losses[-1]) < 0.5 * float(losses[0])
  np.testing.assert_allclose(losses[-1], jnp.mean((x - target) ** 2),
                             rtol=1e-5)
  np.testing.assert_allclose(
      x, coopflow.generate(model, params, z, jax.random.key(6)), atol=1e-5)
  # Changing hidden pixels of the target cannot change a masked fit.
  other = jnp.where(mask, target, -target)
  z_a, _, _ = fit(target, mask)
  z_b, _, _ = fit(other, mask)
  np.testing.assert_array_equal(z_a, z_b)


def test_interpolation_ends_reproduce_the_two_images():
  model = image_model()
  params = init(model, images(8, seed=1))
  x_a, x_b = images(3, seed=2), images(3, seed=3)
  path = coopflow.interpolate(model, params, x_a, x_b, num=5)
  assert path.shape == (3, 5, 4, 4, 1)
  np.testing.assert_allclose(path[:, 0], x_a, atol=1e-4)
  np.testing.assert_allclose(path[:, -1], x_b, atol=1e-4)
  assert float(jnp.abs(path[:, 2] - x_a).mean()) > 1e-2
  with pytest.raises(ValueError, match='num >= 2'):
    coopflow.interpolate(model, params, x_a, x_b, num=1)


def tiny_config(variant=''):
  c = coopflow_checkerboard.get_config(variant or 'scratch')
  c.data.update(batch_size=16, num_points=500)
  c.model.update(width=8, mults=(1,), temb_dim=4, flow_steps=2,
                 flow_hidden=8, langevin_steps=2)
  c.optim.flow.warmup = 0
  c.train.update(steps=4, log_every=2, ckpt_every=4, sample_every=4)
  c.sample.update(num=64, chunk=64, grid_k=1)
  c.eval.num_samples = 64
  return c


def test_two_d_coopflow_trains_end_to_end_and_pre_starts_from_the_flow(
    tmp_path):
  workdir = str(tmp_path / 'coop')
  state = train.train_and_evaluate(tiny_config(), workdir)
  assert int(state.step) == 4
  lines = [json.loads(l) for l in open(os.path.join(workdir,
                                                    'metrics.jsonl'))]
  assert all(np.isfinite(l['ebm_loss']) for l in lines if 'ebm_loss' in l)
  report = [l for l in lines if 'tv_samples' in l][-1]
  assert 0.0 <= report['tv_samples'] <= 1.0
  assert 0.0 <= report['tv_density_flow'] <= 1.0
  npz = np.load(os.path.join(workdir, 'samples', 'step_4.npz'))
  assert npz['x'].shape == npz['proposal'].shape == (64, 2)
  np.testing.assert_allclose(npz['density'].sum(), 1.0, rtol=1e-5)
  # CoopFlow(pre): the flow of a pretraining run, frozen for all 4 steps.
  # A half-written save beside its finished checkpoint is skipped, and left
  # where it is (flow_init is another run's workdir).
  partial = os.path.join(workdir, 'checkpoints',
                         '8.orbax-checkpoint-tmp-1234567890')
  os.makedirs(partial)
  pre = tiny_config('pre')
  pre.coopflow.flow_init = workdir
  pre.optim.flow.freeze_steps = 4
  pre_state = train.train_and_evaluate(pre, str(tmp_path / 'pre'))
  jax.tree_util.tree_map(np.testing.assert_array_equal,
                         jax.device_get(pre_state.params['flow']),
                         jax.device_get(state.params['flow']))
  assert os.path.isdir(partial)
  assert not np.array_equal(
      jax.device_get(pre_state.params['ebm']['stem']['Dense_0']['kernel']),
      jax.device_get(state.params['ebm']['stem']['Dense_0']['kernel']))
  # CoopFlow(pre) in one run: the first 2 of 4 updates are the pretraining
  # run's exactly (EBM untouched, flow by maximum likelihood on the data);
  # the cooperative updates after them move the EBM.
  one_run = tiny_config()
  one_run.coopflow.pretrain_steps = 2
  one_run.train.update(steps=2, ckpt_every=2, sample_every=2)
  pretrain = tiny_config('pretrain')
  pretrain.train.update(steps=2, ckpt_every=2, sample_every=2)
  a = train.train_and_evaluate(one_run, str(tmp_path / 'one_run'))
  b = train.train_and_evaluate(pretrain, str(tmp_path / 'pretrain'))
  jax.tree_util.tree_map(
      lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6),
      jax.device_get(a.params), jax.device_get(b.params))
  one_run.train.update(steps=4, ckpt_every=4, sample_every=4)
  c = train.train_and_evaluate(one_run, str(tmp_path / 'one_run'),
                               allow_config_change=True)
  assert not np.array_equal(
      jax.device_get(c.params['ebm']['stem']['Dense_0']['kernel']),
      jax.device_get(b.params['ebm']['stem']['Dense_0']['kernel']))
  lines = [json.loads(l) for l in open(os.path.join(
      str(tmp_path / 'one_run'), 'metrics.jsonl'))]
  assert [l['pretraining'] for l in lines if 'pretraining' in l] == [1.0, 0.0]
  missing = tiny_config('pre')
  missing.coopflow.flow_init = str(tmp_path / 'nothing')
  with pytest.raises(FileNotFoundError, match='pretrain'):
    train.train_and_evaluate(missing, str(tmp_path / 'bad'))


def test_inpaint_task_keeps_known_pixels_and_writes_its_files(tmp_path):
  c = coopflow_digits.get_config()
  c.data.update(name='array', kind='images', image_size=4)
  c.model.update(width=4, mults=(1,), flow_scales=1, flow_steps=1,
                 flow_hidden=4, langevin_steps=2)
  c.task.update(num=6, recon_iters=3, mask='square')
  dataset = data.images.random_images((4, 4, 1), 40)
  algo = registry.build(c, dataset)
  params, stats = algo.init_variables(jax.random.key(0), dataset.batch(0, 8, 0))
  state = ts.create(params, stats, algo.optimizers)
  prefix = str(tmp_path / 'inpaint')
  out = algo.tasks['inpaint'](state, dataset, prefix)
  assert out['known_pixels_changed'] == 0.0
  npz = np.load(prefix + '.npz')
  mask, x, obs = npz['mask'], npz['x'], npz['observed']
  np.testing.assert_array_equal(x[mask], obs[mask])
  assert (~mask).any() and not np.array_equal(x[~mask], obs[~mask])
  np.testing.assert_allclose(out['masked_pixel_mse'],
                             np.mean((x[~mask] - obs[~mask]) ** 2), rtol=1e-5)
  assert os.path.getsize(prefix + '.png') > 100


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
