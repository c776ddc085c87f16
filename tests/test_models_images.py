"""The image networks: ResNet EBM, U-Net initializer, spectral norm, registry.

Compiling is most of the cost here, so each network's outputs are computed
by one jitted function per fixture and the tests check its entries.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from coopjax import cdrl, models
from coopjax.models import layers

KEY = jax.random.key(0, impl='unsafe_rbg')  # cheap to compile; init only
SHAPE = (3, 8, 8, 2)
LOGSNR = jnp.asarray([9.8, 1.2, -5.1])
LEVELS = jnp.asarray([9.8, 2.69, 1.2, 0.14, -0.88, -2.17])
LEVEL_IDX = jnp.asarray([5, 0, 3])
LABELS = jnp.asarray([1, 2, 3])
NULL = jnp.zeros(3, jnp.int32)


def tiny_ebm(**kw):
  kw = dict(width=8, mults=(1, 2), blocks_per_res=1, temb_dim=8,
            num_classes=3) | kw
  return models.ResNetEnergy(**kw)


def tiny_unet(**kw):
  kw = dict(width=8, mults=(1, 2), num_res_blocks=1, attn_resolutions=(4,),
            dropout=0.5, num_classes=3) | kw
  return models.UNetInitializer(**kw)


def normal(shape, seed):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def perturbed(params, scale=0.3):
  """Random parameters, so that zero-initialised layers do something."""
  leaves, tree = jax.tree_util.tree_flatten(jax.device_get(params))
  return tree.unflatten([a + scale * normal(a.shape, i)
                         for i, a in enumerate(leaves)])


@pytest.fixture(scope='module')
def ebm_case():
  ebm = tiny_ebm()
  x = normal(SHAPE, 100)
  variables = jax.jit(ebm.init)(KEY, x, LOGSNR)

  @jax.jit
  def outputs(variables, x):
    run = lambda *a, **k: ebm.apply(variables, *a, **k)
    feats = run(LOGSNR, method='time_features')
    call, minus_x = jax.vmap(lambda z: run(z, LOGSNR))(jnp.stack([x, -x]))
    null, labelled = jax.vmap(lambda lab: run(x, LOGSNR, label=lab))(
        jnp.stack([NULL, LABELS]))
    return dict(
        call=call, minus_x=minus_x, feats=feats, null=null, labelled=labelled,
        split=run(x, feats, method='energy'),
        cached=run(x, LEVELS, LEVEL_IDX, method=cdrl.level_energy),
        direct=run(x, LEVELS[LEVEL_IDX]),
        cached_label=run(x, LEVELS, LEVEL_IDX, label=LABELS,
                         method=cdrl.level_energy),
        direct_label=run(x, LEVELS[LEVEL_IDX], label=LABELS),
        grad=jax.grad(lambda z: jnp.sum(run(z, LOGSNR)))(x))

  return ebm, variables, x, outputs(variables, x)


def test_ebm_split_forward_equals_call_and_labels_matter(ebm_case):
  ebm, variables, x, out = ebm_case
  f = out['call']
  assert f.shape == (3,) and f.dtype == jnp.float32
  assert all(a.shape[0] == 3 for a in jax.tree_util.tree_leaves(out['feats']))
  np.testing.assert_allclose(out['split'], f, rtol=1e-5)
  np.testing.assert_allclose(out['null'], f, rtol=1e-6)  # None = null label
  assert np.all(np.abs(np.asarray(out['labelled'] - f)) > 1e-4)
  assert not np.allclose(out['minus_x'], f)
  with pytest.raises(ValueError, match='shape'):
    ebm.apply(variables, x, LOGSNR, label=jnp.zeros(2, jnp.int32))


def test_ebm_cached_level_features_equal_direct_evaluation(ebm_case):
  out = ebm_case[-1]
  np.testing.assert_allclose(out['cached'], out['direct'], rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_allclose(out['cached_label'], out['direct_label'],
                             rtol=1e-5, atol=1e-5)
  assert not np.allclose(out['cached'], out['cached_label'])


def test_ebm_gradient_wrt_x_is_finite_and_nonzero(ebm_case):
  _, _, x, out = ebm_case
  assert out['grad'].shape == x.shape
  assert np.all(np.isfinite(out['grad'])) and np.abs(out['grad']).max() > 0


def test_ebm_bfloat16_keeps_float32_params_and_output(ebm_case):
  _, variables, x, out = ebm_case
  ebm16 = tiny_ebm(dtype='bfloat16')
  shapes = jax.eval_shape(ebm16.init, KEY, x, LOGSNR)
  assert all(a.dtype == jnp.float32 for a in jax.tree_util.tree_leaves(shapes))
  assert (jax.tree_util.tree_structure(shapes) ==
          jax.tree_util.tree_structure(variables))
  f32 = out['call']
  f16 = jax.jit(ebm16.apply)(variables, x, LOGSNR)
  assert f16.dtype == jnp.float32
  np.testing.assert_allclose(f16, f32, rtol=0.05,
                             atol=0.05 * np.abs(f32).max())
  with pytest.raises(ValueError, match='config.model.dtype'):
    jax.eval_shape(tiny_ebm(dtype='float16').init, KEY, x, LOGSNR)


def test_unconditional_ebm_has_no_embedding_and_rejects_labels(ebm_case):
  _, variables, x, _ = ebm_case
  ebm = tiny_ebm(num_classes=0)
  shapes = jax.eval_shape(ebm.init, KEY, x, LOGSNR)
  assert 'class_embed' not in shapes['params']
  params = dict(variables['params'])
  del params['class_embed']
  with pytest.raises(ValueError, match='num_classes'):
    jax.eval_shape(lambda: ebm.apply({**variables, 'params': params}, x,
                                     LOGSNR, label=NULL))


def test_spectral_norm_converges_to_the_largest_singular_value():
  conv = layers.SNConv(6, 3)
  x = normal((2, 5, 5, 4), 101)
  variables = jax.jit(conv.init)(KEY, x)
  kernel = variables['params']['Conv_0']['kernel'] * 5.0
  params = {'Conv_0': {'kernel': kernel, 'bias': jnp.zeros(6)}}

  @jax.jit
  def iterate(stats):
    def step(stats, _):
      y, updates = conv.apply({'params': params, 'batch_stats': stats}, x,
                              True, mutable=['batch_stats'])
      return updates['batch_stats'], y
    stats, ys = jax.lax.scan(step, stats, None, length=30)
    return ys[-1]

  y = iterate(variables['batch_stats'])
  sigma = np.linalg.svd(np.asarray(kernel).reshape(-1, 6), compute_uv=False)[0]
  normalised = np.asarray(kernel) / sigma
  # the normalised kernel's largest singular value is 1 ...
  np.testing.assert_allclose(
      np.linalg.svd(normalised.reshape(-1, 6), compute_uv=False)[0], 1.0,
      rtol=1e-5)
  # ... and the layer applies it
  direct = jax.lax.conv_general_dilated(
      x, normalised, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  np.testing.assert_allclose(y, direct, rtol=1e-3, atol=1e-4)


@pytest.fixture(scope='module')
def unet_case():
  unet = tiny_unet()
  x = normal(SHAPE, 102)
  params = jax.jit(unet.init)(KEY, x, LOGSNR)['params']
  trained = perturbed(params)
  keys = jax.random.split(jax.random.key(5), 3)
  other = jax.random.split(jax.random.key(6), 3)

  @jax.jit
  def outputs(params, trained):
    run = lambda p, *a, **k: unet.apply({'params': p}, *a, **k)
    stack = lambda *a: jax.tree_util.tree_map(lambda *l: jnp.stack(l), *a)
    fresh, plain = jax.vmap(lambda p: run(p, x, LOGSNR))(
        stack(params, trained))
    null, labelled = jax.vmap(lambda lab: run(trained, x, LOGSNR, label=lab))(
        stack(NULL, LABELS))
    drop, drop_again, drop_other = jax.vmap(
        lambda k: run(trained, x, LOGSNR, dropout_keys=k))(
            stack(keys, keys, other))
    return dict(
        fresh=fresh, plain=plain, null=null, labelled=labelled, drop=drop,
        drop_again=drop_again, drop_other=drop_other,
        drop_part=run(trained, x[1:], LOGSNR[1:], dropout_keys=keys[1:]))

  return unet, trained, x, outputs(params, trained)


def test_unet_starts_at_identity_and_keeps_shape(unet_case):
  unet, params, x, out = unet_case  # params: perturbed
  assert out['fresh'].shape == x.shape and out['fresh'].dtype == jnp.float32
  np.testing.assert_array_equal(out['fresh'], x)  # zero-initialised last layer
  assert np.abs(np.asarray(out['plain'] - x)).max() > 1e-3
  np.testing.assert_allclose(out['null'], out['plain'], rtol=1e-5, atol=1e-5)
  diff = np.abs(np.asarray(out['labelled'] - out['plain']))
  assert np.all(diff.max(axis=(1, 2, 3)) > 1e-4)
  with pytest.raises(ValueError, match='divisible by 2'):
    jax.eval_shape(unet.apply, {'params': params}, x[:, :7, :7], LOGSNR)


def test_unet_dropout_is_per_example_and_only_with_keys(unet_case):
  out = unet_case[-1]
  np.testing.assert_array_equal(out['drop'], out['drop_again'])
  diff = np.abs(np.asarray(out['drop'] - out['drop_other']))
  assert np.all(diff.max(axis=(1, 2, 3)) > 1e-4)
  assert np.abs(np.asarray(out['plain'] - out['drop'])).max() > 1e-4
  # example i depends only on keys[i]: a sub-batch gives the same rows
  np.testing.assert_allclose(out['drop_part'], out['drop'][1:], rtol=1e-5,
                             atol=1e-5)


def test_unet_bfloat16_params_stay_float32(unet_case):
  _, trained, x, out = unet_case
  unet16 = tiny_unet(dtype='bfloat16')
  shapes = jax.eval_shape(unet16.init, KEY, x, LOGSNR)
  assert all(a.dtype == jnp.float32 for a in jax.tree_util.tree_leaves(shapes))
  out16 = jax.jit(unet16.apply)({'params': trained}, x, LOGSNR)
  assert out16.dtype == jnp.float32
  np.testing.assert_allclose(out16, out['plain'],
                             atol=0.05 * np.abs(out['plain']).max())


def test_registry_builds_and_counts():
  cfg = ml_collections.ConfigDict(dict(
      ebm='resnet', width=8, mults=(1, 2), blocks_per_res=1, temb_dim=8,
      use_sn=True, num_classes=0, dtype='float32', initializer='unet',
      init_width=8, init_mults=(1, 2), init_blocks=1, init_attn=(4,),
      init_dropout=0.1))
  ebm, unet = models.build_ebm(cfg), models.build_initializer(cfg)
  assert isinstance(ebm, models.ResNetEnergy) and ebm.width == 8
  assert isinstance(unet, models.UNetInitializer) and unet.dropout == 0.1
  shapes = jax.eval_shape(ebm.init, KEY, jnp.zeros(SHAPE), LOGSNR)['params']
  direct = sum(int(np.prod(a.shape)) for a in
               jax.tree_util.tree_leaves(shapes))
  assert models.param_count(shapes) == direct
  assert models.describe({'ebm': {'w': jnp.zeros((1000, 1500))},
                          'init': {'w': jnp.zeros(12)}}) == 'ebm 1.5M, init 12'
  cfg.ebm = 'nope'
  with pytest.raises(ValueError, match="config.model.ebm 'nope'"):
    models.build_ebm(cfg)


def test_attention_block_starts_as_identity_and_mixes_pixels():
  block = layers.AttentionBlock()
  x = normal((2, 4, 4, 8), 103)
  variables = jax.jit(block.init)(KEY, x)
  trained = {'params': perturbed(variables['params'])}
  x2 = x.copy()
  x2[:, 0, 0] += 1.0
  fresh, y, y2 = jax.jit(lambda v, t: (block.apply(v, x), block.apply(t, x),
                                       block.apply(t, x2)))(variables, trained)
  np.testing.assert_array_equal(fresh, x)
  # changing one pixel changes the output at every pixel
  assert np.all(np.abs(np.asarray(y2 - y)).max(axis=-1) > 1e-6)


def test_num_groups_divides():
  assert layers.num_groups(64) == 32 and layers.num_groups(24) == 24
  assert layers.num_groups(48) == 24 and layers.num_groups(7) == 7
  assert all(c % layers.num_groups(c) == 0 for c in range(1, 200))
  assert isinstance(layers.group_norm(8), nn.GroupNorm)
