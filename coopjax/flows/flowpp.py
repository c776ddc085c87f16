"""Flow++ (Ho et al. 2019) as the authors' CoopFlow uses it
(``AlvinZhuyx/CoopFlow``, ``models/flowplusplus/``), in Flax.

Data ``x`` in [-1, 1] (8-bit images ``k / 127.5 - 1``) go through

1. ``x01 = (x + 1) / 2`` and **variational dequantisation**: noise
   ``u ~ N(0, I)`` passes 4 steps (ActNorm, invertible 1x1, logistic-mixture
   coupling conditioned on features of ``x``, flip) on a checkerboard split,
   then a sigmoid, giving ``x' = (255 x01 + sigmoid(.)) / 256``;
2. the **logit bound** ``y = logit(0.05 + 0.9 x')``;
3. the **flow**: per scale ``(n_channelwise, n_checkerboard)`` steps of
   ActNorm -> invertible 1x1 (full matrix) -> mixture-of-logistics coupling
   -> flip, on a channel-wise then a checkerboard split; between scales a
   squeeze and half the channels passed to the next scale (they are not
   factored out: the latent is image-shaped, all of it ``N(0, I)``).

Coupling networks: a weight-normalised 3x3 conv to ``mid_channels``, then
``num_blocks`` blocks of [gated conv (concat-ELU, 3x3 conv, 1x1 gate, GLU)
+ residual, LayerNorm, gated multi-head self-attention (4 heads, sinusoidal
positions) + residual, LayerNorm], a weight-normalised 3x3 conv to
``2 + 3 num_components`` values per channel: ``a = rescale(tanh(.))``,
``b``, and the mixture's logits, means and log-scales (clamped at -7).
The coupling is ``y = (logit(MixLogCDF(x)) + b) exp(a)``; its inverse
inverts the mixture CDF by bisection (:func:`mixture_inv_cdf`).

``log_prob(x)`` is the dequantised lower bound in nats per unit volume of the
[-1, 1] scale (the convention of :mod:`coopjax.flows.dequantize`):
``log N(z) + sldj - D log 2`` with the authors' ``sldj`` (which includes
``-log q(u | x)``), so that ``dequantize.bits_per_dim(log_prob, D)`` is the
authors' bits/dim. It is stochastic: pass the noise ``u`` (``noise``) or an
rng stream ``'dequant'``; ``deterministic=False`` turns on dropout
(``dropout`` rate; rng stream ``'dropout'``).

``inverse(z)`` is the exact inverse of the flow and the logit bound
(``x = (2 sigmoid(y) - 1) / 0.9``), unless ``reference_sampler``: the
authors' sampler returns ``2 sigmoid(y) - 1``, i.e. it skips the inverse of
the 0.05 + 0.9 u bound and shrinks every sample towards 0 by 10%; an EBM
trained on its proposals (the authors' checkpoints) expects that, so
imported checkpoints set it (docs/algorithms.md, section 3).

The latent of ``forward`` / ``inverse`` is flat, ``[B, H * W * C]`` (the
image-shaped latent flattened in NHWC order). Parameter names follow the
authors' modules so that :mod:`coopjax.convert.coopflow` can map their
checkpoints; ``v``/``g`` are a weight-normalised layer's direction and
scale (PyTorch's ``weight_v``/``weight_g``). One departure in layout: a
coupling network's blocks (the authors' ``mid_convs.<k>``) are one entry
``mid_convs``, each parameter stacked over the blocks on a leading axis and
run by one ``nn.scan`` (:func:`block_chain`), so that XLA compiles one
block per coupling network instead of ``num_blocks``.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from coopjax.flows.layers import normal_log_prob
from coopjax.models.torch_init import conv_fan_in, torch_default

_HIGHEST = jax.lax.Precision.HIGHEST
LOGIT_BOUND = 0.9           # y = logit(0.05 + 0.9 x01)
SCALE_MIN = -7.0            # clamp of the mixture log-scales
CLAMP = 1e-5                # of the mixture CDF values before inversion
SAFE_LOG_MIN = 1e-22


def safe_log(x: jax.Array) -> jax.Array:
  """``log(max(x, 1e-22))``."""
  return jnp.log(jnp.maximum(x, SAFE_LOG_MIN))


def concat_elu(x: jax.Array) -> jax.Array:
  """``elu([x, -x])`` on the channel axis."""
  return jax.nn.elu(jnp.concatenate([x, -x], axis=-1))


# ---- splits and squeeze, in the authors' element order (NHWC here) ----


def checkerboard(x: jax.Array) -> Tuple[jax.Array, jax.Array]:
  """``[B, H, W, C] -> (y, z)``, each ``[B, H, W/2, C]``: ``y`` the pixels
  with ``i + j`` even (row-major), ``z`` the others."""
  b, h, w, c = x.shape
  if w % 2:
    raise ValueError(f'checkerboard needs an even width, got {w}.')
  pairs = x.reshape(b, h, w // 2, 2, c)
  odd_row = (jnp.arange(h) % 2 == 1)[None, :, None, None]
  first, second = pairs[..., 0, :], pairs[..., 1, :]
  return (jnp.where(odd_row, second, first),
          jnp.where(odd_row, first, second))


def uncheckerboard(y: jax.Array, z: jax.Array) -> jax.Array:
  """The inverse of :func:`checkerboard`."""
  b, h, w2, c = y.shape
  odd_row = (jnp.arange(h) % 2 == 1)[None, :, None, None]
  first = jnp.where(odd_row, z, y)
  second = jnp.where(odd_row, y, z)
  return jnp.stack([first, second], axis=3).reshape(b, h, 2 * w2, c)


def squeeze(x: jax.Array) -> jax.Array:
  """Space-to-depth with PyTorch's channel order ``4 c + 2 dy + dx``."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4)
  return x.reshape(b, h // 2, w // 2, 4 * c)


def unsqueeze(x: jax.Array) -> jax.Array:
  """The inverse of :func:`squeeze`."""
  b, h, w, c4 = x.shape
  x = x.reshape(b, h, w, c4 // 4, 2, 2).transpose(0, 1, 4, 2, 5, 3)
  return x.reshape(b, 2 * h, 2 * w, c4 // 4)


# ---- logistic mixtures ----


def _logistic_z(x, mean, log_scale):
  return (x[..., None, :] - mean) * jnp.exp(-log_scale)


def mixture_log_pdf(x, logits, means, log_scales):
  """Log density of a mixture of logistics; components on axis -2."""
  z = _logistic_z(x, means, log_scales)
  log_p = z - log_scales - 2.0 * jax.nn.softplus(z)
  return jax.nn.logsumexp(jax.nn.log_softmax(logits, axis=-2) + log_p,
                          axis=-2)


def mixture_log_cdf(x, logits, means, log_scales):
  """Log CDF of a mixture of logistics; components on axis -2."""
  log_c = jax.nn.log_sigmoid(_logistic_z(x, means, log_scales))
  return jax.nn.logsumexp(jax.nn.log_softmax(logits, axis=-2) + log_c,
                          axis=-2)


def mixture_inv_cdf(y, logits, means, log_scales, eps: float = 1e-10,
                    max_iters: int = 100):
  """The inverse mixture CDF by bisection, as the authors' ``mixture_inv_cdf``.

  Starts at 0 in the bracket ``[min_k(mu_k) - 20 S, max_k(mu_k) + 20 S]``
  (``S`` the sum of the components' scales) and halves towards the side
  ``cdf(x) < y`` until no element moves by more than ``eps`` or
  ``max_iters`` steps: float32 precision of ``x`` where the CDF is not flat
  (tests/flows/test_flowpp.py: ``|x - x_true| < 1e-5 (1 + |x|)``).

  Gradients: the returned value is the bisection's, with the implicit
  derivative ``dx = (dy - d cdf) / pdf(x)`` attached, so reconstruction can
  differentiate through the flow's inverse.
  """
  scales = jnp.sum(jnp.exp(log_scales), axis=-2, keepdims=True)
  lb0 = jnp.min(means - 20.0 * scales, axis=-2)
  ub0 = jnp.max(means + 20.0 * scales, axis=-2)
  y_sg = jax.lax.stop_gradient(y)
  params = jax.lax.stop_gradient((logits, means, log_scales))

  def cond(state):
    i, _, _, _, diff = state
    return jnp.logical_and(diff > eps, i < max_iters)

  def body(state):
    i, x, lb, ub, _ = state
    cur = jnp.exp(mixture_log_cdf(x, *params))
    gt = cur > y_sg
    new_x = jnp.where(gt, (x + lb) / 2.0, (x + ub) / 2.0)
    new_lb = jnp.where(gt, lb, x)
    new_ub = jnp.where(gt, x, ub)
    return i + 1, new_x, new_lb, new_ub, jnp.max(jnp.abs(new_x - x))

  x0 = jnp.zeros_like(y)
  state = (0, x0, jax.lax.stop_gradient(lb0), jax.lax.stop_gradient(ub0),
           jnp.asarray(jnp.inf, y.dtype))
  x = jax.lax.stop_gradient(jax.lax.while_loop(cond, body, state)[1])
  resid = y - jnp.exp(mixture_log_cdf(x, logits, means, log_scales))
  pdf = jnp.exp(mixture_log_pdf(x, logits, means, log_scales))
  return x + (resid - jax.lax.stop_gradient(resid)) / jax.lax.stop_gradient(
      pdf)


# ---- layers ----


class WNConv(nn.Module):
  """Weight-normalised conv: ``w = g v / ||v||`` per output channel, PyTorch
  initialisation (``v`` and ``bias`` default, ``g = ||v||``)."""
  features: int
  kernel: int

  @nn.compact
  def __call__(self, x):
    fan_in = conv_fan_in(x.shape[-1], (self.kernel, self.kernel))
    init = torch_default(fan_in)
    v = self.param('v', init, (self.kernel, self.kernel, x.shape[-1],
                               self.features))
    g = self.param('g', lambda _: jnp.sqrt(jnp.sum(v ** 2, axis=(0, 1, 2))))
    bias = self.param('bias', init, (self.features,))
    w = v * (g / jnp.sqrt(jnp.sum(v ** 2, axis=(0, 1, 2))))
    y = jax.lax.conv_general_dilated(
        x, w, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
        precision=_HIGHEST)
    return y + bias


class WNDense(nn.Module):
  """Weight-normalised linear layer (PyTorch initialisation)."""
  features: int
  use_bias: bool = True

  @nn.compact
  def __call__(self, x):
    init = torch_default(x.shape[-1])
    v = self.param('v', init, (x.shape[-1], self.features))
    g = self.param('g', lambda _: jnp.sqrt(jnp.sum(v ** 2, axis=0)))
    y = jnp.matmul(x, v * (g / jnp.sqrt(jnp.sum(v ** 2, axis=0))),
                   precision=_HIGHEST)
    if self.use_bias:
      y = y + self.param('bias', init, (self.features,))
    return y


class GatedConv(nn.Module):
  """concat-ELU, 3x3 WN conv (+ 1x1 WN conv of concat-ELU(aux)), concat-ELU,
  channel dropout, 1x1 WN conv to twice the channels, GLU; the residual is
  added by the caller."""
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, aux=None, deterministic=True):
    c = x.shape[-1]
    h = WNConv(c, 3, name='conv')(concat_elu(x))
    if aux is not None:
      h = h + WNConv(c, 1, name='aux_conv')(concat_elu(aux))
    h = concat_elu(h)
    if self.dropout and not deterministic:
      keep = jax.random.bernoulli(self.make_rng('dropout'), 1 - self.dropout,
                                  (h.shape[0], 1, 1, h.shape[-1]))
      h = jnp.where(keep, h / (1 - self.dropout), 0.0)
    h = WNConv(2 * c, 1, name='gate')(h)
    a, b = jnp.split(h, 2, axis=-1)
    return a * jax.nn.sigmoid(b)


def position_encoding(length: int, channels: int) -> jax.Array:
  """The Transformer's sinusoidal encoding ``[length, channels]`` (sines of
  all timescales, then cosines; zero-padded to an odd ``channels``)."""
  pos = jnp.arange(length, dtype=jnp.float32)
  num = channels // 2
  inc = math.log(1e4) / (num - 1)
  inv = jnp.exp(-inc * jnp.arange(num, dtype=jnp.float32))
  t = pos[:, None] * inv[None, :]
  enc = jnp.concatenate([jnp.sin(t), jnp.cos(t)], axis=1)
  return jnp.pad(enc, ((0, 0), (0, channels % 2)))


class GatedAttn(nn.Module):
  """Multi-head self-attention over positions, gated (GLU) output."""
  heads: int = 4
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, deterministic=True):
    b, h, w, c = x.shape
    seq = x.reshape(b, h * w, c) + position_encoding(h * w, c)[None]
    proj = WNDense(3 * c, use_bias=False, name='in_proj')(seq)
    key, value, query = jnp.split(proj, 3, axis=-1)

    def heads(t):
      return t.reshape(b, h * w, self.heads, c // self.heads).transpose(
          0, 2, 1, 3)

    q = heads(query) * (c // self.heads) ** -0.5
    weights = jax.nn.softmax(jnp.einsum('bnqd,bnkd->bnqk', q, heads(key),
                                        precision=_HIGHEST), axis=-1)
    if self.dropout and not deterministic:
      keep = jax.random.bernoulli(self.make_rng('dropout'), 1 - self.dropout,
                                  weights.shape)
      weights = jnp.where(keep, weights / (1 - self.dropout), 0.0)
    out = jnp.einsum('bnqk,bnkd->bnqd', weights, heads(value),
                     precision=_HIGHEST)
    out = out.transpose(0, 2, 1, 3).reshape(b, h, w, c)
    a, g = jnp.split(WNDense(2 * c, name='gate')(out), 2, axis=-1)
    return a * jax.nn.sigmoid(g)


class ConvAttnBlock(nn.Module):
  """Gated conv + residual, LayerNorm, [gated attention + residual,
  LayerNorm]."""
  dropout: float
  use_attn: bool

  @nn.compact
  def __call__(self, x, aux=None, deterministic=True):
    x = GatedConv(self.dropout, name='conv')(x, aux, deterministic) + x
    x = nn.LayerNorm(epsilon=1e-5, name='norm_1')(x)
    if self.use_attn:
      x = GatedAttn(dropout=self.dropout, name='attn')(x, deterministic) + x
      x = nn.LayerNorm(epsilon=1e-5, name='norm_2')(x)
    return x


def block_chain(block: ConvAttnBlock, h: jax.Array, aux: Optional[jax.Array],
                deterministic: bool, length: int) -> jax.Array:
  """``length`` blocks like ``block`` in a row, as one ``nn.scan`` over
  their variables stacked on a leading axis (XLA emits one block's kernels
  instead of ``length``); each block draws its own dropout mask."""

  def body(module, carry, a):
    return module(carry, a, deterministic), None

  scan = nn.scan(body, variable_axes={'params': 0},
                 split_rngs={'params': True, 'dropout': True},
                 in_axes=nn.broadcast, length=length)
  return scan(block, h, aux)[0]


class _CouplingFields(nn.Module):
  """The settings of a coupling network (shared by the modules that build
  one)."""
  mid_channels: int
  num_blocks: int
  num_components: int
  dropout: float
  use_attn: bool

  def coupling_args(self):
    return (self.mid_channels, self.num_blocks, self.num_components,
            self.dropout, self.use_attn)


class CouplingNet(_CouplingFields):
  """The coupling's network: ``x_id -> (a, b, logits, means, log_scales)``,
  the mixture parameters ``[B, H, W, K, C]``; the ``num_blocks`` blocks are
  the stacked ``mid_convs`` (:func:`block_chain`)."""

  @nn.compact
  def __call__(self, x, aux=None, deterministic=True):
    c, k = x.shape[-1], self.num_components
    h = WNConv(self.mid_channels, 3, name='in_conv')(x)
    if self.num_blocks > 0:
      h = block_chain(ConvAttnBlock(self.dropout, self.use_attn,
                                    name='mid_convs'),
                      h, aux, deterministic, self.num_blocks)
    h = WNConv(c * (2 + 3 * k), 3, name='out_conv')(h)
    h = h.reshape(h.shape[:3] + (2 + 3 * k, c))
    v = self.param('rescale_v', nn.initializers.ones, (c,))
    g = self.param('rescale_g', nn.initializers.ones, (c,))
    a = g * v / jnp.abs(v) * jnp.tanh(h[..., 0, :])
    return (a, h[..., 1, :], h[..., 2:2 + k, :], h[..., 2 + k:2 + 2 * k, :],
            jnp.maximum(h[..., 2 + 2 * k:, :], SCALE_MIN))


class MixtureCoupling(_CouplingFields):
  """``(x_change, x_id) -> (y, x_id)``, ``y = (logit(MixCDF(x_change)) + b)
  exp(a)`` with the parameters from ``CouplingNet(x_id[, aux])``."""

  @nn.compact
  def __call__(self, pair, aux=None, reverse=False, deterministic=True):
    x, x_id = pair
    a, b, logits, means, log_scales = CouplingNet(
        *self.coupling_args(), name='nn')(x_id, aux, deterministic)
    if reverse:
      out = x * jnp.exp(-a) - b
      scale_ldj = jax.nn.softplus(out) + jax.nn.softplus(-out)
      out = jnp.clip(jax.nn.sigmoid(out), CLAMP, 1.0 - CLAMP)
      out = mixture_inv_cdf(out, logits, means, log_scales)
      ldj = -(a + scale_ldj + mixture_log_pdf(out, logits, means, log_scales))
    else:
      cdf = jnp.exp(mixture_log_cdf(x, logits, means, log_scales))
      out = -safe_log(1.0 / cdf - 1.0)
      scale_ldj = -safe_log(cdf) - safe_log(1.0 - cdf)
      out = (out + b) * jnp.exp(a)
      ldj = mixture_log_pdf(x, logits, means, log_scales) + scale_ldj + a
    return (out, x_id), jnp.sum(ldj.reshape(ldj.shape[0], -1), axis=-1)


class PairActNorm(nn.Module):
  """ActNorm on the concatenated halves: ``(x - mean) inv_std``, ``mean``
  and ``inv_std = 1 / (std + 1e-6)`` of the ``init`` batch."""

  @nn.compact
  def __call__(self, pair, reverse=False):
    x = jnp.concatenate(pair, axis=-1)
    axes = (0, 1, 2)
    mean = self.param('mean', lambda _: jnp.mean(x, axis=axes))
    inv_std = self.param('inv_std', lambda _: 1.0 / (
        jnp.sqrt(jnp.mean((x - jnp.mean(x, axis=axes)) ** 2, axis=axes))
        + 1e-6))
    ldj = jnp.sum(jnp.log(inv_std)) * x.shape[1] * x.shape[2]
    if reverse:
      x, ldj = x / inv_std + mean, -ldj
    else:
      x = (x - mean) * inv_std
    return tuple(jnp.split(x, 2, axis=-1)), jnp.full((x.shape[0],), ldj)


class PairInvConv(nn.Module):
  """Invertible 1x1 conv on the concatenated halves, ``W`` a full matrix
  (identity plus ``N(0, 1e-6)`` at the start)."""

  @nn.compact
  def __call__(self, pair, reverse=False):
    x = jnp.concatenate(pair, axis=-1)
    n = x.shape[-1]
    w = self.param('weight', lambda k: jnp.eye(n) + 1e-3 * jax.random.normal(
        k, (n, n)))
    ldj = jnp.linalg.slogdet(w)[1] * x.shape[1] * x.shape[2]
    if reverse:
      w, ldj = jnp.linalg.inv(w), -ldj
    x = jnp.matmul(x, w.T, precision=_HIGHEST)
    return tuple(jnp.split(x, 2, axis=-1)), jnp.full((x.shape[0],), ldj)


class PPStep(_CouplingFields):
  """ActNorm -> InvConv -> MixtureCoupling -> Flip on a pair of halves."""

  @nn.compact
  def __call__(self, pair, aux=None, reverse=False, deterministic=True):
    norm = PairActNorm(name='actnorm')
    conv = PairInvConv(name='invconv')
    coupling = MixtureCoupling(*self.coupling_args(), name='coupling')
    ldj = 0.0
    if reverse:
      pair = (pair[1], pair[0])
      pair, l3 = coupling(pair, aux, True, deterministic)
      pair, l2 = conv(pair, True)
      pair, l1 = norm(pair, True)
    else:
      pair, l1 = norm(pair)
      pair, l2 = conv(pair)
      pair, l3 = coupling(pair, aux, False, deterministic)
      pair = (pair[1], pair[0])
    ldj = l1 + l2 + l3
    return pair, ldj


class FlowPlusPlus(nn.Module):
  """Flow++ on ``[B, H, W, C]`` images in [-1, 1] (module docstring).

  Attributes:
    image_shape: ``(H, W, C)``.
    scales: per scale ``(n_channelwise, n_checkerboard)`` couplings
      (((0, 4), (2, 3)), the authors' CIFAR-10).
    mid_channels: coupling network width (96).
    num_blocks: blocks per coupling network (10).
    num_dequant_blocks: blocks of the dequantisation couplings (2); 0 for
      uniform dequantisation ``(255 x01 + U(0, 1)) / 256``.
    num_components: logistic mixture components (32).
    dequant_flows, dequant_components, aux_channels: the dequantiser's steps
      (4), mixture components (32) and conditioning channels (32), fixed in
      the authors' code.
    use_attn: self-attention in the coupling networks.
    dropout: dropout rate when ``deterministic=False`` (0.2).
    reference_sampler: ``inverse`` returns the authors' ``2 sigmoid(y) - 1``
      instead of the exact inverse of the logit bound.
  """
  image_shape: Tuple[int, int, int]
  scales: Sequence[Tuple[int, int]] = ((0, 4), (2, 3))
  mid_channels: int = 96
  num_blocks: int = 10
  num_dequant_blocks: int = 2
  num_components: int = 32
  use_attn: bool = True
  dropout: float = 0.2
  reference_sampler: bool = False
  dequant_flows: int = 4
  dequant_components: int = 32
  aux_channels: int = 32

  # The flow's log_prob needs noise or an rng: see coopjax.coopflow.model.
  stochastic = True

  def setup(self):
    """Creates the steps and checks the shapes."""
    h, w, c = self.image_shape
    n = len(self.scales)
    if n < 1 or h % 2 ** (n - 1) or w % 2 ** n:
      raise ValueError(
          f'FlowPlusPlus: image_shape={tuple(self.image_shape)} needs H '
          f'divisible by 2 ** (len(scales) - 1) = {2 ** (n - 1)} and W by '
          f'2 ** len(scales) = {2 ** n} (squeezes and checkerboards).')
    args = (self.mid_channels, self.num_blocks, self.num_components,
            self.dropout, self.use_attn)
    levels = []
    for i, (n_chan, n_check) in enumerate(self.scales):
      levels.append((
          [PPStep(*args, name=f'level{i}_channel{j}') for j in range(n_chan)],
          [PPStep(*args, name=f'level{i}_checker{j}')
           for j in range(n_check)]))
    self.levels = levels
    if self.num_dequant_blocks > 0:
      # the authors' dequantiser keeps 32 components whatever num_components
      dargs = (self.mid_channels, self.num_dequant_blocks,
               self.dequant_components, self.dropout, self.use_attn)
      self.dequant_steps = [PPStep(*dargs, name=f'dequant_step{j}')
                            for j in range(self.dequant_flows)]
      init = torch_default(conv_fan_in(2 * c, (3, 3)))
      self.aux_in = nn.Conv(self.aux_channels, (3, 3), kernel_init=init,
                            bias_init=init, name='dequant_aux_in')
      self.aux_gates = [GatedConv(self.dropout, name=f'dequant_aux{j}')
                        for j in range(3)]

  @property
  def latent_dim(self) -> int:
    """``H * W * C``."""
    return math.prod(self.image_shape)

  def __call__(self, x, noise=None, deterministic=True):
    """Same as :meth:`forward` (``init`` calls it)."""
    return self.forward(x, noise, deterministic)

  # -- the bijection on logits --

  def _level(self, i, x, reverse, deterministic):
    chans, checks = self.levels[i]
    ldj = jnp.zeros((x.shape[0],), x.dtype)

    def run(steps, pair):
      nonlocal ldj
      for step in (reversed(steps) if reverse else steps):
        pair, l = step(pair, None, reverse, deterministic)
        ldj = ldj + l
      return pair

    def channelwise(x):
      if chans:
        x = jnp.concatenate(run(chans, tuple(jnp.split(x, 2, -1))), -1)
      return x

    def checker(x):
      if checks:
        x = uncheckerboard(*run(checks, checkerboard(x)))
      return x

    def deeper(x):
      if i + 1 < len(self.levels):
        x, x_split = jnp.split(squeeze(x), 2, axis=-1)
        x, l = self._level(i + 1, x, reverse, deterministic)
        nonlocal ldj
        ldj = ldj + l
        x = unsqueeze(jnp.concatenate([x, x_split], axis=-1))
      return x

    order = (deeper, checker, channelwise) if reverse else (
        channelwise, checker, deeper)
    for part in order:
      x = part(x)
    return x, ldj

  def flow_forward(self, y, deterministic=True):
    """The flow on logits: ``(z, ldj)``, ``z`` image-shaped."""
    return self._level(0, y, False, deterministic)

  def flow_inverse(self, z):
    """The inverse of :meth:`flow_forward` (image-shaped)."""
    return self._level(0, z, True, True)[0]

  # -- dequantisation and the logit bound --

  def dequantize(self, x01, noise, deterministic=True):
    """``(x', sldj)``: the authors' dequantisation of ``x01`` in [0, 1]."""
    if self.num_dequant_blocks <= 0:
      u = jax.nn.sigmoid(noise) if noise is not None else jax.random.uniform(
          self.make_rng('dequant'), x01.shape, x01.dtype)
      return (x01 * 255.0 + u) / 256.0, jnp.zeros((x01.shape[0],), x01.dtype)
    if noise is None:
      noise = jax.random.normal(self.make_rng('dequant'), x01.shape, x01.dtype)
    eps_nll = 0.5 * (noise ** 2 + math.log(2 * math.pi))
    aux = self.aux_in(jnp.concatenate(checkerboard(x01 - 0.5), axis=-1))
    for gate in self.aux_gates:
      aux = gate(aux, None, deterministic)
    pair = checkerboard(noise)
    ldj = jnp.zeros((x01.shape[0],), x01.dtype)
    for step in self.dequant_steps:
      pair, l = step(pair, aux, False, deterministic)
      ldj = ldj + l
    u = jax.nn.sigmoid(uncheckerboard(*pair))
    extra = eps_nll + safe_log(u) + safe_log(1.0 - u)
    return (x01 * 255.0 + u) / 256.0, ldj + jnp.sum(
        extra.reshape(extra.shape[0], -1), axis=-1)

  @staticmethod
  def to_logits(x):
    """``(y, ldj)``: ``y = logit(0.05 + 0.9 x)`` for ``x`` in [0, 1]."""
    p = (1.0 + (2.0 * x - 1.0) * LOGIT_BOUND) / 2.0
    y = jnp.log(p) - jnp.log(1.0 - p)
    ldj = (jax.nn.softplus(y) + jax.nn.softplus(-y) -
           jax.nn.softplus(math.log(1.0 - LOGIT_BOUND) -
                           math.log(LOGIT_BOUND)))
    return y, jnp.sum(ldj.reshape(y.shape[0], -1), axis=-1)

  # -- the flow API --

  def forward(self, x, noise=None, deterministic=True):
    """``(z, logdet)`` for images ``x`` in [-1, 1]: flat latents and the
    authors' ``sldj - D log 2`` (so that ``log N(z) + logdet`` is
    :meth:`log_prob`).

    Args:
      x: ``[B, H, W, C]``.
      noise: the dequantiser's ``N(0, I)`` draw, shaped like ``x`` (else
        drawn from the rng stream ``'dequant'``).
      deterministic: no dropout (else rng stream ``'dropout'``).
    """
    if x.shape[1:] != tuple(self.image_shape):
      raise ValueError(f'FlowPlusPlus(image_shape={tuple(self.image_shape)}) '
                       f'expects x of shape [B, *image_shape]; got {x.shape}.')
    x, ldj = self.dequantize((x + 1.0) / 2.0, noise, deterministic)
    y, l = self.to_logits(x)
    z, l2 = self.flow_forward(y, deterministic)
    logdet = ldj + l + l2 - self.latent_dim * math.log(2.0)
    return z.reshape(z.shape[0], -1), logdet

  def log_prob(self, x, noise=None, deterministic=True):
    """The dequantised lower bound of ``log p(x)``, ``[B]``, nats per unit
    volume of the [-1, 1] scale (module docstring)."""
    z, logdet = self.forward(x, noise, deterministic)
    return normal_log_prob(z) + logdet

  def inverse(self, z):
    """Images from flat latents ``[B, H * W * C]`` (module docstring: the
    exact inverse, or the authors' sampler with ``reference_sampler``)."""
    if z.ndim != 2 or z.shape[-1] != self.latent_dim:
      raise ValueError(f'FlowPlusPlus.inverse expects z of shape '
                       f'[B, {self.latent_dim}]; got {z.shape}.')
    y = self.flow_inverse(z.reshape((z.shape[0],) + tuple(self.image_shape)))
    x = 2.0 * jax.nn.sigmoid(y) - 1.0
    return x if self.reference_sampler else x / LOGIT_BOUND

  def sample(self, key, n: int, temperature: float = 1.0):
    """``n`` samples ``inverse(temperature * eps)``."""
    return self.inverse(temperature * jax.random.normal(
        key, (n, self.latent_dim)))
