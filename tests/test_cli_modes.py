"""Every CLI mode and every CDRL task through ``coopjax.main`` on one tiny
trained workdir per dataset (made once per module), with figures that can
fail.

The CLI runs in-process (absl flags parsed by hand, then ``coopjax.main.main``):
the same code as ``python -m coopjax.main`` without a JAX import per call.
"""

import json
import os
import sys

import jax
import numpy as np
import pytest
from absl import flags

from coopjax import data, main, metrics, preflight
from coopjax.data import masks

from helpers import REPO
from helpers.trainer_procs import TINY

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module', autouse=True)
def cheap_keys():
  """Keys whose split and fold_in compile fast (as in tests/configs): the
  digits trainer's initialisation compiles tens of seconds faster."""
  before = jax.config.jax_default_prng_impl
  jax.config.update('jax_default_prng_impl', 'unsafe_rbg')
  yield
  jax.config.update('jax_default_prng_impl', before)


# One statistics cache (the digits classifier, trained once) for every
# workdir of this module; set by shared_cache.
CACHE = []


@pytest.fixture(scope='module', autouse=True)
def shared_cache(tmp_path_factory):
  CACHE.append(str(tmp_path_factory.mktemp('cache')))
  yield
  CACHE.pop()


def cli(*args: str) -> None:
  """``python -m coopjax.main ARGS`` in this process."""
  argv, cwd = sys.argv, os.getcwd()
  # The config flag reads its overrides from sys.argv, as under app.run.
  sys.argv = ['coopjax', *args,
              *(f'--config.eval.cache_dir={c}' for c in CACHE[-1:])]
  os.chdir(REPO)  # --config paths are relative to the repository
  try:
    flags.FLAGS.unparse_flags()
    flags.FLAGS(sys.argv)
    main.main(['coopjax'])
  finally:
    sys.argv = argv
    os.chdir(cwd)
    flags.FLAGS.unparse_flags()
    # Parsing --config defined one flag per override; the next parse
    # defines them again.
    for name in list(flags.FLAGS):
      if name.startswith('config.'):
        delattr(flags.FLAGS, name)


CHECKERBOARD = ('--config=configs/checkerboard.py', *TINY,
                '--config.train.steps=4', '--config.sample.num=1000',
                '--config.eval.num_samples=1000')


def trained(tmp_path_factory, name: str, args) -> str:
  """A workdir ``name`` trained by ``--mode=train`` with ``args``."""
  workdir = str(tmp_path_factory.mktemp('cli') / name)
  cli(*args, f'--workdir={workdir}', '--mode=train')
  return workdir


@pytest.fixture(scope='module')
def checkerboard(tmp_path_factory):
  return trained(tmp_path_factory, 'checkerboard', CHECKERBOARD)


def test_sample_mode_beats_gaussian_noise(checkerboard):
  cli(*CHECKERBOARD, f'--workdir={checkerboard}', '--mode=sample')
  x = np.load(os.path.join(checkerboard, 'samples', 'sample_4.npz'))['x']
  assert x.shape == (1000, 2)
  from helpers.trainer import tiny_config  # pylint: disable=g-import-not-at-top
  dataset = data.load(tiny_config().data, 0)
  noise = np.random.default_rng(0).normal(size=x.shape)
  # Even 4 updates move the samples towards the data (N(0, I): ~0.90).
  tv = metrics.sample_tv(x, dataset)
  assert tv < metrics.sample_tv(noise, dataset) - 0.1, tv


def test_eval_mode_reports_the_tv_of_its_samples(checkerboard):
  cli(*CHECKERBOARD, f'--workdir={checkerboard}', '--mode=eval')
  with open(os.path.join(checkerboard, 'eval.json'), encoding='utf-8') as f:
    result = json.load(f)
  assert result['step'] == 4
  from helpers.trainer import tiny_config  # pylint: disable=g-import-not-at-top
  dataset = data.load(tiny_config().data, 0)
  npz = np.load(os.path.join(checkerboard, 'samples', 'eval_4.npz'))
  assert npz['x'].shape == (1000, 2)
  np.testing.assert_allclose(result['tv_samples'],
                             metrics.sample_tv(npz['x'], dataset), rtol=1e-9)
  # the density figure is that of the level-1 density the file holds
  np.testing.assert_allclose(
      result['tv_density'],
      metrics.density_tv(np.log(npz['density']), dataset), rtol=1e-5)


def test_a_2d_run_has_no_tasks(checkerboard):
  with pytest.raises(preflight.UsageError,
                     match=r'Modes of cdrl on checkerboard: train, sample, '
                     r'eval \(its tasks need image data\)'):
    cli(*CHECKERBOARD, f'--workdir={checkerboard}', '--mode=inpaint')


# The class-conditional digits model (tiny networks, 2 updates).
DIGITS = ('--config=configs/digits.py:cond', '--config.model.width=8',
          '--config.model.mults=(1,)', '--config.model.blocks_per_res=1',
          '--config.model.temb_dim=8', '--config.model.init_width=8',
          '--config.model.init_mults=(1,)', '--config.model.init_blocks=1',
          '--config.model.langevin_steps=2', '--config.data.batch_size=4',
          '--config.sample.num=4', '--config.sample.chunk=4',
          '--config.sample.langevin_steps=2', '--config.eval.num_samples=4',
          '--config.train.steps=2', '--config.train.log_every=1',
          '--config.train.ckpt_every=2', '--config.train.sample_every=2',
          '--config.task.num=20', '--config.task.guidance_weights=(0.0,2.0)',
          '--config.task.steps=(2,1)', '--config.task.concepts=((0,1),)',
          '--config.task.ood_data=noise')


@pytest.fixture(scope='module')
def digits(tmp_path_factory):
  return trained(tmp_path_factory, 'digits', DIGITS)


def task(workdir, mode, args=DIGITS):
  """Runs ``--mode=mode``; its figures (step 2) and its files' prefix."""
  cli(*args, f'--workdir={workdir}', f'--mode={mode}')
  with open(os.path.join(workdir, f'{mode}.json'), encoding='utf-8') as f:
    result = json.load(f)
  assert result['step'] == 2
  return result, os.path.join(workdir, 'samples', f'{mode}_2')


def test_guided_mode(digits):
  result, prefix = task(digits, 'guided')
  npz = np.load(prefix + '.npz')
  np.testing.assert_array_equal(npz['labels'], np.repeat(np.arange(10), 2))
  assert npz['w0'].shape == npz['w2'].shape == (20, 8, 8, 1)
  # the weight changes the samples (same keys), and each has its figure
  assert np.max(np.abs(npz['w0'] - npz['w2'])) > 1e-3
  assert set(result) == {'step', 'frechet_digits_w0', 'frechet_digits_w2',
                         'label_log_prob_w0', 'label_log_prob_w2'}
  assert result['frechet_digits_w0'] != result['frechet_digits_w2']
  # Guidance at w targets p(x | c) p(c | x)^w: the samples are classified
  # as their label more confidently by the model's own classifier at w = 2
  # than unguided (w = 0). A weight ignored or of the wrong sign fails.
  # (2 updates, 20 samples: -23.4 -> -19.8 nats.)
  assert result['label_log_prob_w2'] > result['label_log_prob_w0'] + 0.5


def test_compose_mode(digits):
  result, prefix = task(digits, 'compose')
  npz = np.load(prefix + '.npz')
  assert npz['x'].shape == (20, 8, 8, 1) and result['num'] == 20
  np.testing.assert_array_equal(npz['concepts'], [[0, 1]])


def test_inpaint_mode(digits):
  result, prefix = task(digits, 'inpaint')
  npz = np.load(prefix + '.npz')
  x, obs, mask = npz['x'], npz['observed'], npz['mask']
  # the centre square: exactly a quarter of the pixels hidden
  assert mask.shape == x.shape and np.mean(~mask) == 0.25
  np.testing.assert_array_equal(mask, masks.make('square', x.shape, 0))
  np.testing.assert_array_equal(x[mask], obs[mask])
  np.testing.assert_allclose(result['masked_pixel_mse'],
                             np.mean((x[~mask] - obs[~mask]) ** 2), rtol=1e-5)
  assert result['masked_pixel_mse'] > 0


def test_ood_mode(digits):
  result, prefix = task(digits, 'ood')
  npz = np.load(prefix + '.npz')
  s_in, s_out = npz['scores_in'], npz['scores_out']
  assert len(s_in) == len(s_out) == 20
  np.testing.assert_allclose(result['auroc'], metrics.auroc(s_in, s_out))
  np.testing.assert_allclose(result['score_in_mean'], s_in.mean(), rtol=1e-5)
  # Uniform noise is far from digits even for a barely trained EBM.
  assert s_in.std() > 0 and s_out.std() > 0


def test_fewer_steps_mode(digits):
  result, prefix = task(digits, 'fewer_steps')
  assert set(result) == {'step', 'frechet_digits_K2', 'frechet_digits_K1'}
  assert result['frechet_digits_K2'] != result['frechet_digits_K1']
  assert os.path.exists(prefix + '_K1.png')


def digits_train_mean() -> np.ndarray:
  """The per-pixel mean of the training digits: the mean-fill baseline."""
  from coopjax.data.images import to_float  # pylint: disable=g-import-not-at-top
  return np.mean(to_float(data.load(
      main.load_config('configs/digits.py').data, 0).images), axis=0)


def test_unknown_mode_lists_the_tasks(digits):
  with pytest.raises(preflight.UsageError,
                     match='train, sample, eval, guided, compose, inpaint, '
                     'ood, fewer_steps'):
    cli(*DIGITS, f'--workdir={digits}', '--mode=bogus')


# CoopFlow on digits (tiny Glow and EBM, 1 flow-only update then 1
# cooperative one); reconstruction and inpainting descend on the chain's
# start (the authors' 'x0' space).
COOPFLOW = ('--config=configs/coopflow_digits.py', '--config.model.width=4',
            '--config.model.mults=(1,)', '--config.model.flow_scales=1',
            '--config.model.flow_steps=1', '--config.model.flow_hidden=4',
            '--config.model.langevin_steps=2', '--config.data.batch_size=8',
            '--config.coopflow.pretrain_steps=1',
            '--config.optim.flow.lr_after_step=1', '--config.train.steps=2',
            '--config.train.log_every=1', '--config.train.ckpt_every=2',
            '--config.train.sample_every=2', '--config.sample.num=16',
            '--config.sample.chunk=16', '--config.eval.num_samples=16',
            '--config.task.num=8', '--config.task.recon_space=x0',
            '--config.task.recon_iters=40', '--config.task.interp_points=4')


@pytest.fixture(scope='module')
def coopflow(tmp_path_factory):
  return trained(tmp_path_factory, 'coopflow', COOPFLOW)


def coopflow_task(workdir, mode):
  result, prefix = task(workdir, mode, COOPFLOW)
  return result, np.load(prefix + '.npz')


def test_coopflow_reconstruct_beats_the_mean_image(coopflow):
  result, npz = coopflow_task(coopflow, 'reconstruct')
  target, x, losses = npz['target'], npz['x'], npz['losses']
  test = data.load(main.load_config('configs/coopflow_digits.py').data,
                   0).test_batch(8)['x']
  np.testing.assert_array_equal(target, test)
  assert len(losses) == 41  # before each of the 40 iterations, after the last
  np.testing.assert_allclose(result['mse_final'], losses[-1])
  np.testing.assert_allclose(np.mean((x - target) ** 2), losses[-1],
                             rtol=1e-4, atol=1e-9)
  # The mean training image misses the test digits by ~0.29 per pixel; the
  # descent on the chain's start reaches ~1e-8 (the 2-step chain of a
  # barely trained EBM is nearly the identity). A wrong target, sign or
  # learning rate stays far above.
  baseline = np.mean((target - digits_train_mean()[None]) ** 2)
  assert baseline > 0.2
  assert result['mse_final'] < 0.01 * baseline < result['mse_initial']


def test_coopflow_interpolate_ends_at_the_reconstructions(coopflow):
  # The authors' interpolation (the default): the ends are the flow latents
  # of the reconstructions' chain starts, so the revised ends are the
  # reconstructions, here ~1e-8 from the test digits (40 descent steps).
  result, npz = coopflow_task(coopflow, 'interpolate')
  flow, revised, x_a, x_b = npz['flow'], npz['revised'], npz['x_a'], npz['x_b']
  test = data.load(main.load_config('configs/coopflow_digits.py').data,
                   0).test_batch(8)['x']
  np.testing.assert_array_equal(x_a, test[:4])
  np.testing.assert_array_equal(x_b, test[4:])
  assert flow.shape == revised.shape == (4, 4, 8, 8, 1)
  ends = np.concatenate([revised[:, 0], revised[:, -1]])
  np.testing.assert_allclose(result['endpoint_mse'],
                             np.mean((ends - test) ** 2), rtol=1e-5)
  assert result['endpoint_mse'] < 1e-3
  assert 'endpoint_max_abs_error' not in result
  # the inner points are neither end, and the chain revises them
  steps = np.abs(np.diff(flow, axis=1)).mean(axis=(2, 3, 4))
  np.testing.assert_allclose(result['mean_step_change'], steps.mean(),
                             rtol=1e-5)
  assert steps.min() > 1e-3
  assert np.max(np.abs(revised - flow)) > 1e-4
  # From the images' own latents the flow is inverted at the ends instead.
  result, prefix = task(coopflow, 'interpolate',
                        COOPFLOW + ('--config.task.interp_from=images',))
  flow = np.load(prefix + '.npz')['flow']
  assert result['endpoint_max_abs_error'] < 1e-4
  np.testing.assert_allclose(flow[:, 0], x_a, atol=1e-4)
  np.testing.assert_allclose(flow[:, -1], x_b, atol=1e-4)


def test_coopflow_inpaint_fits_the_known_pixels(coopflow):
  result, npz = coopflow_task(coopflow, 'inpaint')
  x, obs, mask, losses = npz['x'], npz['observed'], npz['mask'], npz['losses']
  np.testing.assert_array_equal(mask, masks.make('square', x.shape, 0))
  np.testing.assert_array_equal(x[mask], obs[mask])
  assert not np.array_equal(x[~mask], obs[~mask])
  np.testing.assert_allclose(result['masked_pixel_mse'],
                             np.mean((x[~mask] - obs[~mask]) ** 2), rtol=1e-5)
  # the start is fitted to the known pixels: 1.1 -> 0.02 per pixel
  assert len(losses) == 41
  np.testing.assert_allclose(result['known_pixel_mse_fit'], losses[-1])
  assert losses[-1] < 0.1 * losses[0]
  assert os.path.getsize(os.path.join(coopflow, 'samples',
                                      'inpaint_2.png')) > 100


def test_coopflow_modes_on_digits(coopflow):
  with pytest.raises(preflight.UsageError,
                     match='train, sample, eval, reconstruct, interpolate, '
                     'inpaint'):
    cli(*COOPFLOW, f'--workdir={coopflow}', '--mode=guided')


# The latent flow prior on corrupted digits (30% of the pixels missing, class
# 0 held out for anomaly detection); tiny networks, 2 updates.
LATENT = ('--config=configs/latent_flow_digits.py:anomaly,corrupt',
          '--config.data.batch_size=8', '--config.model.latent_dim=4',
          '--config.model.gen_width=4', '--config.model.flow_steps=2',
          '--config.model.flow_hidden=8', '--config.model.langevin_steps=2',
          '--config.train.steps=2', '--config.train.log_every=1',
          '--config.train.ckpt_every=2', '--config.train.sample_every=2',
          '--config.sample.num=8', '--config.sample.tasks=()',
          '--config.task.num=8', '--config.task.recon_steps=2',
          '--config.task.chunk=64')


@pytest.fixture(scope='module')
def latent(tmp_path_factory):
  return trained(tmp_path_factory, 'latent', LATENT)


def latent_data():
  from helpers.latent_flow_models import tiny_config  # pylint: disable=g-import-not-at-top
  config = tiny_config('anomaly,corrupt')
  return config, data.load(config.data, config.seed)


def test_latent_reconstruct_and_inpaint(latent):
  from coopjax.data.images import to_float  # pylint: disable=g-import-not-at-top
  config, dataset = latent_data()
  result, prefix = task(latent, 'reconstruct', LATENT)
  npz = np.load(prefix + '.npz')
  np.testing.assert_array_equal(npz['x'], dataset.test_batch(8)['x'])
  np.testing.assert_allclose(result['recon_mse'],
                             np.mean((npz['x_hat'] - npz['x']) ** 2),
                             rtol=1e-5)
  assert result['recon_steps'] == 2
  result, prefix = task(latent, 'inpaint', LATENT)
  npz = np.load(prefix + '.npz')
  x, filled, mask = npz['x'], npz['filled'], npz['mask']
  np.testing.assert_array_equal(mask, masks.make(config.task.mask, x.shape,
                                                 config.seed))
  np.testing.assert_array_equal(filled[mask], x[mask])
  np.testing.assert_allclose(result['masked_pixel_mse'],
                             np.mean((filled - x)[~mask] ** 2), rtol=1e-5)
  # the baseline: the per-pixel mean of the observed training pixels
  train_mean = np.nanmean(to_float(dataset.images), axis=0)
  np.testing.assert_allclose(
      result['mean_fill_mse'],
      np.mean((np.broadcast_to(train_mean, x.shape) - x)[~mask] ** 2),
      rtol=1e-5)


def test_latent_anomaly_and_recover(latent):
  from coopjax.data.images import to_float  # pylint: disable=g-import-not-at-top
  config, dataset = latent_data()
  result, prefix = task(latent, 'anomaly', LATENT)
  npz = np.load(prefix + '.npz')
  labels = dataset.test_batch(len(dataset.test_images))['label']
  np.testing.assert_array_equal(npz['anomalous'],
                                labels == config.data.holdout_class)
  assert result['num_anomalous'] == np.sum(labels == 9) > 0
  np.testing.assert_allclose(result['anomaly_auroc'], metrics.auroc(
      npz['score'][npz['anomalous']], npz['score'][~npz['anomalous']]))
  np.testing.assert_allclose(npz['score'],
                             npz['recon_term'] + npz['neg_log_prior'])
  result, prefix = task(latent, 'recover', LATENT)
  npz = np.load(prefix + '.npz')
  x, filled, mask = npz['x'], npz['filled'], npz['mask']
  # the clean training images behind the corrupted ones it saw
  np.testing.assert_array_equal(
      mask, np.isfinite(to_float(dataset.images[:8])))
  np.testing.assert_allclose(result['missing_fraction'], 1 - mask.mean())
  assert abs(result['missing_fraction'] - 0.3) < 0.05
  np.testing.assert_allclose(result['masked_pixel_mse'],
                             np.mean((filled - x)[~mask] ** 2), rtol=1e-5)
  np.testing.assert_array_equal(filled[mask], to_float(dataset.images[:8])[mask])
