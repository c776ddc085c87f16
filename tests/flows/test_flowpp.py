"""coopjax.flows.flowpp (Flow++): splits, the mixture-CDF inverse, the
bijection's inverse and exact log-determinant, normalisation on a 2-D grid,
and the whole flow's inverse up to dequantisation. Parity with the authors'
code: tests/convert/test_coopflow_parity.py."""

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from coopjax.flows import flowpp
from coopjax.flows.flowpp import FlowPlusPlus
from coopjax.flows.layers import normal_log_prob

from helpers.flows import midpoint_grid
from helpers.networks import KEY, perturbed

_jit = functools.partial(jax.jit,
                         compiler_options={'xla_backend_optimization_level': 0})
TINY = dict(mid_channels=4, num_blocks=1, num_components=3, use_attn=False,
            num_dequant_blocks=0)


def _rng(seed):
  return np.random.default_rng(seed)


def test_checkerboard_and_squeeze_orders_and_round_trips():
  x = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3)
  y, z = flowpp.checkerboard(x)
  # y holds the pixels with i + j even, row-major: (0,0), (0,2), (1,1), ...
  np.testing.assert_array_equal(y[0, :2, :, 0],
                                x[0, [[0, 0], [1, 1]], [[0, 2], [1, 3]], 0])
  np.testing.assert_array_equal(z[0, :2, :, 0],
                                x[0, [[0, 0], [1, 1]], [[1, 3], [0, 2]], 0])
  np.testing.assert_array_equal(flowpp.uncheckerboard(y, z), x)
  s = flowpp.squeeze(x)
  # PyTorch's order: channel 4 c + 2 dy + dx
  np.testing.assert_array_equal(s[0, 0, 0, 4 * 1 + 2 * 1 + 0], x[0, 1, 0, 1])
  np.testing.assert_array_equal(flowpp.unsqueeze(s), x)


def test_mixture_inverse_cdf_to_float32_precision_with_implicit_gradient():
  rng = _rng(0)
  shape = (64, 5, 3)  # [..., K, C]
  logits = jnp.asarray(rng.normal(size=shape), jnp.float32)
  means = jnp.asarray(2 * rng.normal(size=shape), jnp.float32)
  log_scales = jnp.asarray(rng.uniform(-2, 1, size=shape), jnp.float32)
  x_true = jnp.asarray(3 * rng.normal(size=(64, 3)), jnp.float32)
  cdf = lambda x: jnp.exp(flowpp.mixture_log_cdf(x, logits, means,
                                                 log_scales))
  y = cdf(x_true)
  inv = _jit(lambda y: flowpp.mixture_inv_cdf(y, logits, means, log_scales))
  x = inv(y)
  # the stated tolerance: |cdf(x) - y| < 1e-6 (float32 resolution of y), so
  # |x - x_true| < 1e-5 wherever the density exceeds 0.1
  assert float(jnp.max(jnp.abs(cdf(x) - y))) < 1e-6
  pdf_true = np.asarray(jnp.exp(flowpp.mixture_log_pdf(x_true, logits, means,
                                                       log_scales)))
  ok = pdf_true > 0.1
  err = np.abs(np.asarray(x - x_true))[ok]
  assert ok.sum() > 50 and err.max() < 1e-5, err.max()
  ok = ok & np.asarray((y > 1e-4) & (y < 1 - 1e-4))
  # dx/dy = 1 / pdf(x), elementwise
  grad = _jit(jax.grad(lambda y: jnp.sum(flowpp.mixture_inv_cdf(
      y, logits, means, log_scales))))(y)
  pdf = jnp.exp(flowpp.mixture_log_pdf(x, logits, means, log_scales))
  np.testing.assert_allclose(np.asarray(grad)[np.asarray(ok)],
                             np.asarray(1 / pdf)[np.asarray(ok)], rtol=1e-4)


def _flow_params(flow, x):
  variables = _jit(flow.init)({'params': KEY, 'dequant': KEY}, x)
  return perturbed(variables, 0.1)


def test_inverse_exact_on_logits_and_up_to_the_dequantisation_bin():
  """The inverse is exact on the bijection (logits -> z), and within a
  quantisation bin through the uniform dequantiser; the log-det against the
  Jacobian of the bijection. The variational dequantiser is checked against
  the authors' in the parity test."""
  flow = FlowPlusPlus((4, 4, 1), scales=((0, 1), (1, 1)), **TINY)
  x = jnp.asarray(_rng(3).integers(0, 256, (4, 4, 4, 1)) / 127.5 - 1,
                  jnp.float32)
  params = _flow_params(flow, x)
  # the uniform dequantiser of the flow (num_dequant_blocks=0) by hand
  u = jnp.asarray(_rng(4).uniform(size=x.shape), jnp.float32)
  x_deq = ((x + 1) / 2 * 255 + u) / 256
  y, _ = flow.to_logits(jnp.concatenate([(x + 1) / 2, x_deq]))
  fwd = functools.partial(flow.apply, method=FlowPlusPlus.flow_forward)
  z, ldj = _jit(fwd)(params, y)
  back = _jit(functools.partial(flow.apply, method=FlowPlusPlus.inverse))(
      params, z.reshape(8, -1))
  np.testing.assert_allclose(back[:4], x, atol=2e-4)
  # dequantisation moves x01 by (u - x01) / 256, u in (0, 1): < 2/256 in x
  moved = float(jnp.max(jnp.abs(back[4:] - x)))
  assert 1e-4 < moved < 2 / 256
  y, ldj = y[:4], ldj[:4]

  def single(v):
    return fwd(params, v.reshape(1, 4, 4, 1))[0].reshape(-1)

  jac = _jit(jax.vmap(jax.jacfwd(single)))(y.reshape(4, -1))
  np.testing.assert_allclose(ldj, jnp.linalg.slogdet(jac)[1], rtol=1e-4,
                             atol=1e-3)


def test_bijection_log_density_integrates_to_one_on_a_2d_grid():
  # a 2-D Flow++ (one 1x2 image, one checkerboard scale of 2 couplings);
  # midpoint rule on [-15, 15]^2 in its input space (logits), spacing 0.05
  flow = FlowPlusPlus((1, 2, 1), scales=((0, 2),), **TINY)
  init = jnp.asarray(_rng(2).uniform(-0.9, 0.9, (64, 1, 2, 1)), jnp.float32)
  params = _flow_params(flow, init)
  grid, area = midpoint_grid(15.0, 600)
  z, ldj = _jit(functools.partial(flow.apply,
                                  method=FlowPlusPlus.flow_forward))(
                                      params, grid.reshape(-1, 1, 2, 1))
  total = float(jnp.sum(jnp.exp(normal_log_prob(z) + ldj)) * area)
  assert abs(total - 1.0) < 5e-3, total


def _coupling_net_and_params(num_blocks=3):
  net = flowpp.CouplingNet(mid_channels=4, num_blocks=num_blocks,
                           num_components=2, dropout=0.2, use_attn=True)
  x, aux = (jnp.asarray(_rng(s).normal(size=(2, 4, 4, c)), jnp.float32)
            for s, c in ((5, 2), (6, 3)))
  params = perturbed(_jit(net.init)(KEY, x, aux), 0.2)['params']
  return net, params, x, aux


def test_scanned_coupling_net_equals_its_blocks_unrolled():
  """The ``nn.scan`` over the stacked blocks computes block 0, then 1, then
  2 with slice ``i`` of each stacked parameter (a wrong order, a shared
  slice or a dropped block fails)."""
  net, params, x, aux = _coupling_net_and_params()
  assert params['mid_convs']['norm_1']['scale'].shape == (3, 4)
  block = flowpp.ConvAttnBlock(dropout=0.2, use_attn=True)

  @jax.jit
  def unrolled(params, x, aux):
    h = flowpp.WNConv(4, 3).apply({'params': params['in_conv']}, x)
    for i in range(3):
      h = block.apply({'params': jax.tree_util.tree_map(
          lambda a, i=i: a[i], params['mid_convs'])}, h, aux)
    return flowpp.WNConv(2 * (2 + 3 * 2), 3).apply(
        {'params': params['out_conv']}, h).reshape(2, 4, 4, 8, 2)

  h = unrolled(params, x, aux)
  got = _jit(net.apply)({'params': params}, x, aux)
  np.testing.assert_allclose(got[1], h[..., 1, :], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(got[2], h[..., 2:4, :], rtol=1e-5, atol=1e-5)


def test_scanned_blocks_draw_their_own_dropout_masks():
  net, params, x, aux = _coupling_net_and_params()
  keys = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, flowpp.GatedConv):
      jax.debug.callback(lambda k: keys.append(np.asarray(k).tobytes()),
                         jax.random.key_data(context.module.make_rng(
                             'dropout')))
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    jax.block_until_ready(net.apply({'params': params}, x, aux,
                                    deterministic=False,
                                    rngs={'dropout': KEY}))
  assert len(keys) == 3 and len(set(keys)) == 3
