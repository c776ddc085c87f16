"""The ResNet EBM. Compiling is most of the cost here, so its outputs are
computed by one jitted function (a module fixture) and the tests check them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import cdrl, models

from helpers import matmul_dtypes
from helpers.networks import KEY, SHAPE, LOGSNR, LEVELS, LEVEL_IDX, LABELS, NULL, normal

# Compiling the module fixture takes over 15 s on 2 CPU cores.
pytestmark = pytest.mark.slow


def tiny_ebm(**kw):
  kw = dict(width=8, mults=(1, 2), blocks_per_res=1, temb_dim=8,
            num_classes=3) | kw
  return models.ResNetEnergy(**kw)


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
  # It convolves in bfloat16 (float32 would pass a closeness check too;
  # the spectral-norm power iteration and the embedding stay float32) ...
  convs = [d for p, d in matmul_dtypes(ebm16.apply, variables, x, LOGSNR)
           if p == 'conv_general_dilated']
  assert convs and all(d == ('bfloat16', 'bfloat16') for d in convs), convs
  # ... so it differs from float32, by about bfloat16's rounding (8-bit
  # mantissa, 0.4% per operation; measured 0.47% of max|f|).
  err = np.abs(f16 - f32).max() / np.abs(f32).max()
  assert 1e-4 < err < 0.02, err
  with pytest.raises(ValueError, match='config.model.dtype'):
    jax.eval_shape(tiny_ebm(dtype='float16').init, KEY, x, LOGSNR)


def test_unconditional_ebm_has_no_embedding_and_rejects_labels(ebm_case):
  _, variables, x, _ = ebm_case
  ebm = tiny_ebm(num_classes=0)
  shapes = jax.eval_shape(ebm.init, KEY, x, LOGSNR)
  assert 'y_map' not in shapes['params']
  params = dict(variables['params'])
  del params['y_map']
  with pytest.raises(ValueError, match='num_classes'):
    jax.eval_shape(lambda: ebm.apply({**variables, 'params': params}, x,
                                     LOGSNR, label=NULL))
