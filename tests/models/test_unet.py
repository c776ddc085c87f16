"""The U-Net initializer, its outputs computed by one jitted function."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import models

from helpers import matmul_dtypes
from helpers.networks import KEY, SHAPE, LOGSNR, LABELS, NULL, normal, perturbed

# Compiling the module fixture takes over 30 s on 2 CPU cores.
pytestmark = pytest.mark.slow


def tiny_unet(**kw):
  kw = dict(width=8, mults=(1, 2), num_res_blocks=1, attn_resolutions=(4,),
            dropout=0.5, num_classes=3) | kw
  return models.UNetInitializer(**kw)


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
  # It convolves in bfloat16 (float32 would pass a closeness check too),
  # so it differs from float32 by bfloat16's rounding accumulated over the
  # 27 convolutions (measured 2.7% of max|out|; the bound is ~4x that).
  convs = [d for p, d in matmul_dtypes(unet16.apply, {'params': trained}, x,
                                       LOGSNR) if p == 'conv_general_dilated']
  assert convs and all(d == ('bfloat16', 'bfloat16') for d in convs), convs
  err = np.abs(out16 - out['plain']).max() / np.abs(out['plain']).max()
  assert 1e-4 < err < 0.1, err
