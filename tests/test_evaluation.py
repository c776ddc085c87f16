"""Tests for the image metrics: Frechet distance, FID Inception, IS, digits."""

import importlib.util
import os
import subprocess
import sys

import ml_collections
import numpy as np
import pytest
import scipy.linalg

from coopjax import metrics
from coopjax.trainer import reports
from coopjax.data import images as image_data
from coopjax.metrics import digits_classifier as dc
from coopjax.metrics import fid, frechet, inception

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')


def _converter():
  spec = importlib.util.spec_from_file_location(
      'convert_inception', os.path.join(ROOT, 'tools', 'convert_inception.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _random_gaussian(rng, d):
  a = rng.standard_normal((d, d))
  return rng.standard_normal(d), a @ a.T + 0.1 * np.eye(d)


# ---------------------------------------------------------------- Frechet


def test_frechet_distance_equals_direct_sqrtm_formula():
  rng = np.random.default_rng(0)
  for d in (1, 3, 7):
    (mu1, s1), (mu2, s2) = _random_gaussian(rng, d), _random_gaussian(rng, d)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    direct = (np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
              - 2 * np.trace(covmean))
    got = metrics.frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(direct, rel=1e-8, abs=1e-8)
    assert metrics.frechet_distance(mu2, s2, mu1, s1) == pytest.approx(
        got, rel=1e-8)
    assert metrics.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(
        0.0, abs=1e-8 * np.trace(s1))


def test_frechet_distance_of_singular_covariances_is_real_and_right():
  # Rank-1 covariances in 2-D: N(0, diag(a, 0)) vs N(0, diag(b, 0)) are
  # 1-D Gaussians, d^2 = (sqrt(a) - sqrt(b))^2.
  s1, s2 = np.diag([4.0, 0.0]), np.diag([1.0, 0.0])
  assert frechet.frechet_distance(np.zeros(2), s1, np.zeros(2),
                                  s2) == pytest.approx(1.0)
  nan_mu = np.array([np.nan, 0.0])
  assert np.isnan(frechet.frechet_distance(nan_mu, s1, np.zeros(2), s2))
  with pytest.raises(ValueError, match='expected'):
    frechet.frechet_distance(np.zeros(3), s1, np.zeros(3), s2)


def test_gaussian_stats_streaming_equals_numpy():
  x = np.random.default_rng(1).standard_normal((50, 4)) * 3 + 100
  stats = metrics.GaussianStats()
  for i in range(0, 50, 7):
    stats.update(x[i:i + 7])
  mu, sigma = stats.finalize()
  np.testing.assert_allclose(mu, x.mean(axis=0), rtol=1e-12)
  np.testing.assert_allclose(sigma, np.cov(x, rowvar=False), rtol=1e-9)
  with pytest.raises(ValueError, match='>= 2'):
    metrics.gaussian_stats(x[:1])


# -------------------------------------------------------- Inception Score


def test_inception_score_of_uniform_and_confident_logits():
  assert metrics.inception_score(np.zeros((20, 1008)), splits=10)[0] == (
      pytest.approx(1.0))
  k = 5
  confident = 50.0 * np.eye(k)[np.tile(np.arange(k), 4)]  # 20 x 5, balanced
  mean, std = metrics.inception_score(confident, splits=4)
  assert mean == pytest.approx(k, rel=1e-6) and std == pytest.approx(0, abs=1e-6)
  with pytest.raises(ValueError, match='splits'):
    metrics.inception_score(confident, splits=21)


# ----------------------------------------------- Inception network, weights


@pytest.fixture(scope='module')
def weights_file(tmp_path_factory):
  path = tmp_path_factory.mktemp('inception') / 'inception_fid.npz'
  np.savez(path, **inception.flatten(inception.random_weights(seed=0)))
  return str(path)


def test_inception_outputs_shapes_and_head(weights_file):
  variables = inception.load_weights(weights_file)
  x = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 1)).astype(np.float32)
  pool, logits = inception.inception_outputs(x, variables, batch_size=2)
  assert pool.shape == (2, inception.NUM_FEATURES) and logits.shape == (
      2, inception.NUM_LOGITS)
  assert np.all(pool >= 0) and np.all(np.isfinite(logits)) and pool.std() > 0
  kernel = np.asarray(variables['params']['fc']['kernel'])
  np.testing.assert_allclose(logits, pool @ kernel, rtol=1e-4, atol=1e-4)
  # Examples are independent: a reversed batch gives reversed outputs.
  pool_r, _ = inception.inception_outputs(x[::-1], variables, batch_size=2)
  np.testing.assert_allclose(pool_r, pool[::-1], rtol=1e-4, atol=1e-5)


def test_missing_or_wrong_weights_say_how_to_make_them(tmp_path):
  with pytest.raises(FileNotFoundError, match='convert_inception.py'):
    inception.load_weights(str(tmp_path / 'nope.npz'))
  flat = inception.flatten(inception.random_weights())
  flat.pop('params/Mixed_7c/branch_pool/conv/kernel')
  flat['params/fc/kernel'] = np.zeros((3, 3), np.float32)
  bad = tmp_path / 'bad.npz'
  np.savez(bad, **flat)
  with pytest.raises(ValueError, match=r'missing: params/Mixed_7c/branch_pool'
                     r'.*wrong shape: params/fc/kernel.*docs/fid.md'):
    inception.load_weights(str(bad))


def test_converter_round_trips_a_synthetic_torch_state_dict(tmp_path):
  conv = _converter()
  flat = inception.flatten(inception.random_weights(seed=3))
  state = conv.to_state_dict(flat)
  # The pytorch-fid FID Inception names and torch (out, in, kh, kw) shapes.
  known = {'Conv2d_1a_3x3.conv.weight': (32, 3, 3, 3),
           'Conv2d_4a_3x3.bn.running_var': (192,),
           'Mixed_5b.branch_pool.conv.weight': (32, 192, 1, 1),
           'Mixed_6a.branch3x3.conv.weight': (384, 288, 3, 3),
           'Mixed_6e.branch7x7dbl_5.conv.weight': (192, 192, 1, 7),
           'Mixed_7a.branch7x7x3_4.conv.weight': (192, 192, 3, 3),
           'Mixed_7b.branch1x1.conv.weight': (320, 1280, 1, 1),
           'Mixed_7c.branch3x3dbl_3b.conv.weight': (384, 384, 3, 1),
           'fc.weight': (1008, 2048), 'fc.bias': (1008,)}
  for key, shape in known.items():
    assert state[key].shape == shape, key
  assert len(state) == 94 * 5 + 2  # 94 BasicConv2d (conv + bn) and fc
  for key in [k for k in state if k.endswith('.bn.weight')]:
    state[key.replace('.weight', '.num_batches_tracked')] = np.array(7)
  np.savez(tmp_path / 'sd.npz', **state)
  conv.main([str(tmp_path / 'sd.npz'), str(tmp_path / 'out.npz')])
  with np.load(tmp_path / 'out.npz') as f:
    assert sorted(f.files) == sorted(flat)
    for key in flat:
      np.testing.assert_array_equal(f[key], flat[key])
  k = state['Mixed_6e.branch7x7dbl_5.conv.weight']
  np.testing.assert_array_equal(
      flat['params/Mixed_6e/branch7x7dbl_5/conv/kernel'][0, 4, 10, 20],
      k[20, 10, 0, 4])
  with pytest.raises(ValueError, match='Unknown key'):
    conv.convert_state_dict({**state, 'Mixed_5b.extra.weight': np.zeros(1)})


def test_fid_of_the_real_images_is_zero_and_stats_are_cached(
    weights_file, tmp_path):
  data = image_data.random_images((8, 8, 1), num=2, seed=1, name='tiny/set')
  samples = image_data.to_float(data.images)
  out = fid.fid_and_is(samples, data, weights_file, str(tmp_path),
                       num_real=2, batch_size=2, log=lambda _: None)
  assert set(out) == {'fid', 'inception_score', 'inception_score_std'}
  files = os.listdir(tmp_path)
  assert files == [f'fid_stats_tiny-set_train_8x8x1_n2_'
                   f'{fid.weights_hash(weights_file)}.npz'], files
  # Read back from the cache (no variables: recomputing would fail).
  mu, sigma = fid.reference_stats(data, None, fid.weights_hash(weights_file),
                                  str(tmp_path), num=2)
  pool, logits = inception.inception_outputs(samples, inception.load_weights(
      weights_file), batch_size=2)
  np.testing.assert_allclose(mu, pool.mean(axis=0), rtol=1e-5, atol=1e-6)
  assert np.trace(sigma) > 0
  assert out['fid'] == pytest.approx(0.0, abs=1e-6 * np.trace(sigma))
  assert out['inception_score'] == pytest.approx(
      metrics.inception_score(logits, splits=2)[0], rel=1e-5)


# ------------------------------------------------------------------ digits


@pytest.fixture(scope='module')
def digits_cache(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('digits_cache'))
  dc.load_or_train(path)
  return path


def test_digits_classifier_accuracy_and_frechet(digits_cache):
  model = dc.load_or_train(digits_cache)
  assert model['test_accuracy'] > 0.9
  held_out = image_data.load_digits({}).test_images
  real = metrics.digits_frechet(held_out, digits_cache)
  noise = metrics.digits_frechet(
      np.random.default_rng(0).uniform(-1, 1, held_out.shape), digits_cache)
  assert real < 0.05 * noise, (real, noise)
  # 16x16 padded digits are cropped back: the same figure.
  padded = image_data.load_digits({'image_size': 16}).test_images
  assert metrics.digits_frechet(padded, digits_cache) == pytest.approx(real)


def test_cached_digits_classifier_is_reused(digits_cache, monkeypatch):
  def no_training(*args, **kwargs):
    raise AssertionError('the classifier was trained again')
  monkeypatch.setattr(dc, 'train_classifier', no_training)
  first = dc.load_or_train(digits_cache)
  dc._load_cached.cache_clear()  # pylint: disable=protected-access
  again = dc.load_or_train(digits_cache)
  np.testing.assert_array_equal(again['mu'], first['mu'])
  cfg = ml_collections.ConfigDict(dict(
      data=dict(resize='pad'), eval=dict(cache_dir=digits_cache)))
  held_out = image_data.load_digits({}).test_images
  out = reports.quality(cfg, image_data.load_digits({}), held_out,
                        os.path.join(digits_cache, 'samples', 'x'))
  assert out == {'frechet_digits': pytest.approx(
      metrics.digits_frechet(held_out, digits_cache))}


def test_digits_input_checks():
  with pytest.raises(ValueError, match="resize='resize'"):
    dc.to_classifier_size(np.zeros((2, 11, 11, 1)))
  with pytest.raises(ValueError, match=r'\[N, H, H, 1\]'):
    dc.to_classifier_size(np.zeros((2, 8, 8, 3)))


def test_importing_metrics_does_not_import_tensorflow(tmp_path):
  for name in ('tensorflow', 'tensorflow_datasets'):
    (tmp_path / name).mkdir()
    (tmp_path / name / '__init__.py').write_text('')
  code = ('import sys, coopjax.metrics, coopjax.trainer.reports; '
          'bad = [m for m in sys.modules if m.split(".")[0] in '
          '("tensorflow", "tensorflow_datasets")]; assert not bad, bad')
  subprocess.run([sys.executable, '-c', code], check=True, timeout=120,
                 env={**os.environ, 'PYTHONPATH': str(tmp_path)})


def test_inception_matches_pytorch_fid_when_installed(tmp_path):
  """Random weights in pytorch-fid's network, converted: the same outputs."""
  torch = pytest.importorskip('torch')
  pi = pytest.importorskip('pytorch_fid.inception')
  functional = torch.nn.functional
  torch.manual_seed(0)
  net = pi._inception_v3(num_classes=1008, aux_logits=False, weights=None)  # pylint: disable=protected-access
  for name, block in (('5b', pi.FIDInceptionA(192, 32)),
                      ('5c', pi.FIDInceptionA(256, 64)),
                      ('5d', pi.FIDInceptionA(288, 64)),
                      ('6b', pi.FIDInceptionC(768, 128)),
                      ('6c', pi.FIDInceptionC(768, 160)),
                      ('6d', pi.FIDInceptionC(768, 160)),
                      ('6e', pi.FIDInceptionC(768, 192)),
                      ('7b', pi.FIDInceptionE_1(1280)),
                      ('7c', pi.FIDInceptionE_2(2048))):
    setattr(net, 'Mixed_' + name, block)
  with torch.no_grad():
    for m in net.modules():  # non-trivial BatchNorm statistics
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.uniform_(-0.1, 0.1)
        m.running_var.uniform_(0.5, 1.5)
        m.weight.uniform_(0.5, 1.5)
  net.eval()
  x = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
  with torch.no_grad():
    h = functional.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2),
                               size=(299, 299), mode='bilinear',
                               align_corners=False)
    for name in ('Conv2d_1a_3x3', 'Conv2d_2a_3x3', 'Conv2d_2b_3x3',
                 'maxpool1', 'Conv2d_3b_1x1', 'Conv2d_4a_3x3', 'maxpool2',
                 'Mixed_5b', 'Mixed_5c', 'Mixed_5d', 'Mixed_6a', 'Mixed_6b',
                 'Mixed_6c', 'Mixed_6d', 'Mixed_6e', 'Mixed_7a', 'Mixed_7b',
                 'Mixed_7c'):
      h = getattr(net, name)(h)
    pool = functional.adaptive_avg_pool2d(h, 1).flatten(1)
    logits = net.fc(pool).numpy()
  state = {k: v.numpy() for k, v in net.state_dict().items()}
  np.savez(tmp_path / 'w.npz', **_converter().convert_state_dict(state))
  variables = inception.load_weights(str(tmp_path / 'w.npz'))
  got_pool, got_logits = inception.inception_outputs(
      x, variables, batch_size=2, logits_bias=True)
  np.testing.assert_allclose(got_pool, pool.numpy(), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(got_logits, logits, rtol=1e-4, atol=1e-5)
