"""coopjax.models.ebm_res: the authors' EBM_res (size, structure,
PyTorch's default initialisation). Parity with the authors' code is in
tests/models/test_coopflow_parity.py."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import models
from coopjax.models import EBMRes

from helpers.networks import KEY

SMALL = EBMRes(16, (2,), head_features=7)


def test_parameter_count_matches_the_authors_at_32_and_64():
  # torch: sum(p.numel() for p in EBM_res(3, 128, img_size=s).parameters())
  for mults, side, count in (((2, 4, 8), 32, 17_129_444),
                             ((2, 4, 8, 8), 64, 45_444_068)):
    shapes = jax.eval_shape(EBMRes(128, mults).init, jax.random.key(0),
                            jnp.zeros((1, side, side, 3)))
    assert models.param_count(shapes) == count


def test_pytorch_default_initialisation():
  """Every weight and bias is U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  params = jax.jit(SMALL.init)(KEY, jnp.zeros((1, 8, 8, 3)))['params']
  layers = {'conv_in': 3 * 9, 'head': 32 * 16}
  layers.update({f'block0/{n}': 16 * 9 for n in ('conv1', 'conv2', 'res')})
  for name, fan_in in layers.items():
    layer = params
    for part in name.split('/'):
      layer = layer[part]
    bound = 1 / math.sqrt(fan_in)
    for leaf in (layer['kernel'], layer['bias']):
      assert float(jnp.max(jnp.abs(leaf))) <= bound
    w = np.asarray(layer['kernel'])
    assert w.shape[-2] * np.prod(w.shape[:-2]) == fan_in
    if w.size > 1000:  # the variance of U(-b, b) is b^2 / 3
      assert np.var(w) == pytest.approx(bound ** 2 / 3, rel=0.1)


def test_energy_sums_the_head_and_refuses_small_images():
  x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 8, 8, 3)),
                  jnp.float32)
  params = jax.jit(SMALL.init)(KEY, x)
  # the head leaves 1x1x7 at 8x8 (one pooling, a 4x4 VALID conv): f is its sum
  f, inter = jax.jit(lambda p, x: SMALL.apply(
      p, x, capture_intermediates=True))(params, x)
  assert f.shape == (2,)
  head = inter['intermediates']['head']['__call__'][0]
  assert head.shape == (2, 1, 1, 7)
  np.testing.assert_allclose(f, head.sum(axis=(1, 2, 3)), rtol=1e-6)
  with pytest.raises(ValueError, match='at least 16'):
    jax.eval_shape(EBMRes(4, (2, 2)).init, KEY, jnp.zeros((1, 8, 8, 3)))


def test_reference_generator_sizes_are_the_authors():
  from coopjax.models.generator import ReferenceGenerator
  # torch: sum(p.numel() for p in _netG(args).parameters()) for the README's
  # commands: SVHN (ngf 64, nz 100), CIFAR-10 (ngf 128, nz 128), CelebA
  # 64x64 (ngf 128, nz 100)
  for shape, ngf, base, last, nz, count in (
      ((32, 32, 3), 64, 4, 2, 100, 3_447_683),
      ((32, 32, 3), 128, 8, 1, 128, 18_883_075),
      ((64, 64, 3), 128, 4, 2, 100, 12_656_515)):
    gen = ReferenceGenerator(shape, ngf, base, last)
    p = jax.eval_shape(gen.init, KEY, jnp.zeros((1, nz)))
    assert models.param_count(p) == count
    assert jax.eval_shape(gen.apply, p, jnp.zeros((2, nz))).shape == (
        (2,) + shape)
  with pytest.raises(ValueError, match='base'):
    ReferenceGenerator((32, 32, 3), 8, 3).widths()
