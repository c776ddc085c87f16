"""coopjax.metrics.inception: the Inception Score, the FID Inception network,
its weights and tools/convert_inception.py."""

import importlib.util
import os

import jax
import numpy as np
import pytest

from coopjax import metrics
from coopjax.metrics import inception

from helpers import REPO


def _tool(name: str):
  """The script ``tools/<name>.py`` as a module."""
  spec = importlib.util.spec_from_file_location(
      name, os.path.join(REPO, 'tools', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _converter():
  return _tool('convert_inception')


def test_inception_score_of_uniform_and_confident_logits():
  assert metrics.inception_score(np.zeros((20, 1008)), splits=10)[0] == (
      pytest.approx(1.0))
  k = 5
  confident = 50.0 * np.eye(k)[np.tile(np.arange(k), 4)]  # 20 x 5, balanced
  mean, std = metrics.inception_score(confident, splits=4)
  assert mean == pytest.approx(k, rel=1e-6) and std == pytest.approx(0, abs=1e-6)
  with pytest.raises(ValueError, match='splits'):
    metrics.inception_score(confident, splits=21)


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


def test_features_split_over_devices_equal_one_device(weights_file):
  variables = inception.load_weights(weights_file)
  x = np.random.default_rng(1).uniform(-1, 1, (6, 8, 8, 1)).astype(np.float32)
  assert jax.local_device_count() == 4
  one = inception.inception_outputs(x, variables, batch_size=4,
                                    devices=jax.local_devices()[:1])
  four = inception.inception_outputs(x, variables, batch_size=4)
  for a, b in zip(one, four):
    assert a.shape == b.shape and a.shape[0] == 6
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
  sharded = jax.device_put(x[:4], inception.batch_sharding(jax.local_devices()))
  assert [s.data.shape[0] for s in sharded.addressable_shards] == [1, 1, 1, 1]


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


def test_inception_matches_pytorch_fid_when_installed(tmp_path):
  """Random weights in pytorch-fid's network, converted: the same outputs."""
  torch = pytest.importorskip('torch')
  pytest.importorskip('pytorch_fid.inception')
  torch.manual_seed(0)
  net = _tool('make_fid_golden').pytorch_fid_net()
  with torch.no_grad():
    for m in net.modules():  # non-trivial BatchNorm statistics
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.uniform_(-0.1, 0.1)
        m.running_var.uniform_(0.5, 1.5)
        m.weight.uniform_(0.5, 1.5)
  x = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
  pool, logits = _tool('make_fid_golden').pytorch_fid_outputs(net, x)
  state = {k: v.numpy() for k, v in net.state_dict().items()}
  np.savez(tmp_path / 'w.npz', **_converter().convert_state_dict(state))
  variables = inception.load_weights(str(tmp_path / 'w.npz'))
  got_pool, got_logits = inception.inception_outputs(
      x, variables, batch_size=2, logits_bias=True)
  np.testing.assert_allclose(got_pool, pool, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(got_logits, logits, rtol=1e-4, atol=1e-5)


def test_inception_matches_stored_pytorch_fid_outputs(tmp_path):
  """pytorch-fid's outputs for fixed random weights and inputs, stored by
  tools/make_fid_golden.py: the equivalence is checked without torch."""
  tool = _tool('make_fid_golden')
  with np.load(os.path.join(REPO, 'tests', 'golden',
                            'pytorch_fid_outputs.npz')) as f:
    golden = {k: f[k] for k in f.files}
  np.testing.assert_array_equal(golden['x'], tool.inputs())
  np.savez(tmp_path / 'w.npz', **tool.golden_weights())
  variables = inception.load_weights(str(tmp_path / 'w.npz'))
  pool, logits = inception.inception_outputs(golden['x'], variables,
                                             batch_size=2, logits_bias=True)
  np.testing.assert_allclose(pool, golden['pool'], rtol=1e-4, atol=1e-5)
  # logits reach |17|: summation order moves them by up to ~3e-5
  np.testing.assert_allclose(logits, golden['logits'], rtol=1e-4, atol=1e-4)
