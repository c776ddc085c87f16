"""Building blocks shared by the networks: spectrally normalised layers,
GroupNorm, self-attention and per-example dropout.

Spectral normalisation follows ``torch.nn.utils.spectral_norm`` (one power
iteration per training-mode forward, stored ``u`` and ``v`` otherwise); its
state lives in the ``'batch_stats'`` collection and advances only when
``update_stats=True`` (:func:`spectral_normalised`). A conv kernel ``[kh, kw,
in, out]`` is normalised as the ``[kh * kw * in, out]`` matrix.

Every layer takes a compute ``dtype`` (``None``: that of the inputs); parameters
stay float32.
"""

import functools
from typing import Any, Mapping, Optional, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

DTYPES = ('float32', 'bfloat16')

# PyTorch's default Linear/Conv initialisation (variance 1 / (3 fan_in)), which
# the reference networks use.
torch_default_init = nn.initializers.variance_scaling(1 / 3, 'fan_in',
                                                      'uniform')


def tf_default_init(scale: float = 1.0) -> nn.initializers.Initializer:
  """The DRL authors' ``default_init``: variance scaling ``scale``, fan_avg,
  uniform (their ``init_scale=0`` means ``scale=1e-10``: near zero, so that a
  lower-bounded spectral norm, :func:`spectral_normalised`, still has a
  gradient)."""
  return nn.initializers.variance_scaling(scale or 1e-10, 'fan_avg',
                                          'uniform')


def lrelu(x: jax.Array) -> jax.Array:
  """Leaky ReLU with slope 0.2, the EBMs' activation."""
  return nn.leaky_relu(x, negative_slope=0.2)


def compute_dtype(dtype: Union[str, Any]) -> jnp.dtype:
  """The compute dtype named by ``config.model.dtype``.

  Args:
    dtype: 'float32', 'bfloat16' or a numpy/JAX dtype of either.

  Raises:
    ValueError: any other dtype.
  """
  try:
    resolved = jnp.dtype(dtype)
  except TypeError:
    resolved = None
  if resolved is None or resolved.name not in DTYPES:
    raise ValueError(f'config.model.dtype={dtype!r} is not supported; '
                     f'expected one of {DTYPES}.')
  return resolved


def model_labels(label: Optional[jax.Array], n: int, num_classes: int,
                 owner: str) -> Optional[jax.Array]:
  """Checked ``[n]`` int32 model labels for a class embedding (0 = null).

  Args:
    label: ``[n]`` model labels, or None.
    n: number of rows the labels must match.
    num_classes: classes of the network (0: unconditional).
    owner: the network's name, for error messages.

  Returns:
    None for an unconditional network; the null label 0 everywhere when a
    conditional network gets no label.

  Raises:
    ValueError: a label for an unconditional network, or a wrong shape.
  """
  if not num_classes:
    if label is not None:
      raise ValueError(f'{owner} got a label but num_classes=0; set '
                       'config.model.num_classes > 0 to condition on labels.')
    return None
  if label is None:
    return jnp.zeros((n,), jnp.int32)
  if jnp.shape(label) != (n,):
    raise ValueError(f'{owner}: label has shape {jnp.shape(label)}; expected '
                     f'({n},), one model label per example / noise level.')
  return jnp.asarray(label, jnp.int32)


SN_EPS = 1e-12  # PyTorch's spectral_norm eps
SN_BOUND_EPS = 1e-6  # added to sigma by the DRL authors' lower-bounded variant


def _unit(x: jax.Array) -> jax.Array:
  """``x / max(||x||, eps)``, PyTorch's ``F.normalize``."""
  return x / jnp.maximum(jnp.linalg.norm(x), SN_EPS)


def power_step(kernel: jax.Array, u: jax.Array):
  """One power iteration on ``kernel`` (``[..., out]``) from ``u`` ``[out]``.

  The kernel is the matrix ``[prod(...), out]`` (the transpose of PyTorch's
  ``[out, in * kh * kw]``, inputs in Flax's ``(kh, kw, in)`` order). As in
  ``torch.nn.utils.spectral_norm``: ``v = unit(W^T u)``, ``u = unit(W v)``.

  Returns:
    ``(u, v)``, gradient-stopped.
  """
  mat = kernel.reshape(-1, kernel.shape[-1]).astype(jnp.float32)
  v = _unit(mat @ u)
  u = _unit(v @ mat)
  return jax.lax.stop_gradient(u), jax.lax.stop_gradient(v)


def sn_sigma(kernel: jax.Array, u: jax.Array, v: jax.Array) -> jax.Array:
  """``sigma = u^T W v``, differentiable in ``kernel`` (``u``, ``v`` fixed)."""
  mat = kernel.reshape(-1, kernel.shape[-1]).astype(jnp.float32)
  return jnp.dot(v @ mat, u)


def power_iteration(params: Any, stats: Any) -> Any:
  """``stats`` after one power iteration of every spectrally normalised layer.

  The pure form of what a forward pass with ``update_stats=True`` stores:
  every ``{'u', 'v'}`` node of ``stats`` is advanced with the ``kernel`` at
  the same path of ``params`` (stacked layers, as ``nn.scan`` keeps them,
  each with its own). Lets a loss update the statistics once,
  before any forward pass, as the authors' training-mode forward does.
  """
  if isinstance(stats, Mapping) and set(stats) == {'u', 'v'}:
    step = power_step
    for _ in range(stats['u'].ndim - 1):  # layers stacked by nn.scan
      step = jax.vmap(step)
    u, v = step(params['kernel'], stats['u'])
    return {'u': u, 'v': v}
  if isinstance(stats, Mapping):
    return {k: power_iteration(params[k], sub) for k, sub in stats.items()}
  raise ValueError(f'power_iteration: unexpected statistics node {stats!r}; '
                   "expected nested dicts ending in {'u', 'v'}.")


def spectral_normalised(module: nn.Module, kernel: jax.Array,
                        update_stats: bool, bounded: bool = False) -> jax.Array:
  """``kernel / sigma`` with PyTorch's ``spectral_norm`` semantics.

  ``bounded`` (the DRL authors' ``SN(..., lower_bound=True)``, used on their
  near-zero-initialised layers): ``kernel / s * min(s, 1)`` with ``s = sigma
  + 1e-6``, i.e. the spectral norm is capped at 1 rather than set to 1, so a
  layer can start (and stay) close to zero.

  ``u`` ``[out]`` and ``v`` ``[in]`` live in the ``'batch_stats'`` collection
  of ``module``. ``update_stats=True`` (PyTorch's training mode): one power
  iteration from the stored ``u``, the new ``u``, ``v`` are stored and used.
  ``update_stats=False`` (eval mode: Langevin, sampling): the stored ``u``,
  ``v`` are used as they are. Gradients flow through ``sigma = u^T W v``
  with ``u``, ``v`` fixed. At initialisation ``u``, ``v`` are one power
  iteration from a random ``u``, so an eval-mode forward before any update
  already divides by a sensible ``sigma`` (PyTorch leaves them random until
  the first training-mode forward).
  """
  u_init = v_init = None
  if module.is_initializing() and not module.has_variable('batch_stats', 'u'):
    u0 = _unit(jax.random.normal(module.make_rng('params'),
                                 (kernel.shape[-1],)))
    u_init, v_init = power_step(kernel, u0)
  state = module.variable('batch_stats', 'u', lambda: u_init)
  v_state = module.variable('batch_stats', 'v', lambda: v_init)
  u, v = state.value, v_state.value
  if update_stats and not module.is_initializing():
    u, v = power_step(kernel, u)
    state.value, v_state.value = u, v
  sigma = sn_sigma(kernel, u, v).astype(kernel.dtype)
  if bounded:
    sigma = sigma + SN_BOUND_EPS
    return kernel / sigma * jnp.minimum(sigma, 1)
  return kernel / sigma


class SNDense(nn.Module):
  """A dense layer, spectrally normalised as ``torch.nn.utils.spectral_norm``.

  Parameters ``kernel`` ``[in, out]`` and ``bias`` ``[out]``; with ``use_sn``
  the statistics ``u``, ``v`` in ``'batch_stats'`` (see
  :func:`spectral_normalised`, also for ``bounded``). ``kernel_init``:
  PyTorch's default unless given.
  """
  features: int
  use_sn: bool = True
  use_bias: bool = True
  dtype: Optional[Any] = None
  kernel_init: Any = torch_default_init
  bounded: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, update_stats: bool = False) -> jax.Array:
    kernel = self.param('kernel', self.kernel_init,
                        (x.shape[-1], self.features))
    if self.use_sn:
      kernel = spectral_normalised(self, kernel, update_stats, self.bounded)
    dtype = self.dtype or x.dtype
    y = jnp.dot(x.astype(dtype), kernel.astype(dtype))
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros,
                         (self.features,)).astype(dtype)
    return y


_DN = ('NHWC', 'HWIO', 'NHWC')


def _same_padding(kernel: jax.Array):
  k = kernel.shape[0]
  return [(k // 2, k // 2)] * 2


def _plain_conv(x: jax.Array, kernel: jax.Array, padding=None) -> jax.Array:
  """``jax.lax``'s convolution; ``padding`` None: 'SAME' for ``kernel``."""
  padding = _same_padding(kernel) if padding is None else padding
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding,
                                      dimension_numbers=_DN)


@jax.custom_vjp
def _canonical_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return _plain_conv(x, kernel)


def _canonical_conv_fwd(x, kernel):
  return _canonical_conv(x, kernel), (x, kernel)


def _canonical_conv_bwd(res, g):
  x, kernel = res
  pad = _same_padding(kernel)
  # d/dx: the same 'SAME' conv of g with the kernel flipped, in and out swapped
  dx = _plain_conv(g, jnp.flip(kernel, (0, 1)).swapaxes(2, 3))
  # d/dkernel: a 'VALID' conv with the input channels as the batch and the
  # batch as the contracted feature: [in, H+k-1, W+k-1, B] * [H, W, B, out]
  xp = jnp.pad(x, ((0, 0), pad[0], pad[1], (0, 0)))
  dk = _plain_conv(xp.transpose(3, 1, 2, 0), g.transpose(1, 2, 0, 3), 'VALID')
  return dx, dk.transpose(1, 2, 0, 3).astype(kernel.dtype)


_canonical_conv.defvjp(_canonical_conv_fwd, _canonical_conv_bwd)


def _varying_axes(a: jax.Array) -> frozenset:
  aval = jax.typeof(a)
  manual = getattr(aval, 'manual_axis_type', None)  # jax >= 0.10
  if manual is not None:
    return frozenset(manual.varying)
  return frozenset(getattr(aval, 'vma', ()))


def _same_varying_axes(*arrays: jax.Array):
  """``arrays`` cast to vary over the union of their manual axes (under
  ``shard_map``, or ``vmap`` with an axis name), as JAX casts a primitive's
  operands: a custom VJP's cotangents must vary as its inputs do, and the
  cast's transpose sums a replicated kernel's gradient over the devices."""
  axes = [_varying_axes(a) for a in arrays]
  union = frozenset().union(*axes)
  return tuple(jax.lax.pcast(a, tuple(sorted(union - have)), to='varying')
               if union - have else a for a, have in zip(arrays, axes))


def conv_same(x: jax.Array, kernel: jax.Array,
              canonical: Optional[bool] = None) -> jax.Array:
  """A stride-1 'SAME' convolution, NHWC images and an HWIO kernel (odd, square).

  With ``canonical`` (default: when JAX's default backend is the CPU) the
  gradients are written as two forward convolutions in XLA's canonical
  layout. XLA:CPU runs the transposed convolutions that JAX's own rule makes
  on its slow generic path when they sit inside a loop, such as the
  ``nn.scan`` over a network's same-shape blocks: at CIFAR-10 size the
  weight gradient of a scanned conv took 15x as long as unrolled
  (``bench/RESULTS.md``). The values are the same either way (a test checks
  both gradients against ``jax.lax``'s). Being a custom VJP, the canonical
  form has no forward-mode derivative (``jax.jvp``, ``jax.jacfwd``); the
  networks' reverse-mode uses (energies' input and parameter gradients,
  gradients of gradients) are all defined.
  """
  k = kernel.shape[0]
  if kernel.shape[1] != k or k % 2 == 0:
    raise ValueError(f'conv_same needs an odd square kernel; got shape '
                     f'{kernel.shape}.')
  if canonical is None:
    canonical = jax.default_backend() == 'cpu'
  if canonical:
    return _canonical_conv(*_same_varying_axes(x, kernel))
  return _plain_conv(x, kernel)


class Conv(nn.Module):
  """``nn.Conv(features, (k, k), padding='SAME')`` (same parameters,
  ``kernel`` ``[k, k, in, out]`` and ``bias`` ``[out]``) through
  :func:`conv_same`."""
  features: int
  kernel_size: int = 3
  dtype: Optional[Any] = None
  kernel_init: Any = nn.initializers.lecun_normal()
  bias_init: Any = nn.initializers.zeros

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel_size
    kernel = self.param('kernel', self.kernel_init,
                        (k, k, x.shape[-1], self.features))
    bias = self.param('bias', self.bias_init, (self.features,))
    dtype = self.dtype or x.dtype
    return conv_same(x.astype(dtype), kernel.astype(dtype)) + bias.astype(
        dtype)


class SNConv(nn.Module):
  """A stride-1 'SAME' convolution, spectrally normalised like :class:`SNDense`.

  Parameters ``kernel`` ``[k, k, in, out]`` and ``bias`` ``[out]``; the kernel
  is normalised as the ``[k * k * in, out]`` matrix.
  """
  features: int
  kernel_size: int = 3
  use_sn: bool = True
  use_bias: bool = True
  dtype: Optional[Any] = None
  kernel_init: Any = torch_default_init
  bounded: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, update_stats: bool = False) -> jax.Array:
    k = self.kernel_size
    kernel = self.param('kernel', self.kernel_init,
                        (k, k, x.shape[-1], self.features))
    if self.use_sn:
      kernel = spectral_normalised(self, kernel, update_stats, self.bounded)
    dtype = self.dtype or x.dtype
    y = conv_same(x.astype(dtype), kernel.astype(dtype))
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros,
                         (self.features,)).astype(dtype)
    return y


def num_groups(channels: int, max_groups: int = 32) -> int:
  """The largest divisor of ``channels`` not above ``max_groups``."""
  return max(g for g in range(1, min(channels, max_groups) + 1)
             if channels % g == 0)


def _grouped(x: jax.Array, groups: int) -> jax.Array:
  """``[B, ..., C]`` -> ``[B, N, groups, C / groups]``."""
  return x.reshape(x.shape[0], -1, groups, x.shape[-1] // groups)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _group_norm_fwd(x, scale, bias, groups, epsilon):
  xg = _grouped(x, groups)
  d = xg - jnp.mean(xg, axis=(1, 3), keepdims=True)
  r = jax.lax.rsqrt(jnp.mean(d * d, axis=(1, 3), keepdims=True) + epsilon)
  xhat = (d * r).reshape(x.shape)
  return xhat * scale + bias, (xhat, r, scale)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _group_norm_bwd(groups, epsilon, res, dy):
  del epsilon
  xhat, r, scale = res
  over = tuple(range(dy.ndim - 1))
  g, xh = _grouped(dy * scale, groups), _grouped(xhat, groups)
  dx = r * (g - jnp.mean(g, axis=(1, 3), keepdims=True)
            - xh * jnp.mean(g * xh, axis=(1, 3), keepdims=True))
  return dx.reshape(dy.shape), jnp.sum(dy * xhat, over), jnp.sum(dy, over)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def group_norm_fn(x: jax.Array, scale: jax.Array, bias: jax.Array,
                  groups: int, epsilon: float) -> jax.Array:
  """GroupNorm of float32 ``x`` ``[B, ..., C]`` over its ``groups`` channel
  groups (statistics per example and group, two-pass variance), then
  ``* scale + bias``.

  The gradient is written out (the textbook GroupNorm backward) rather than
  derived by JAX: the same values, in about half the StableHLO of
  ``flax.linen.GroupNorm`` and its derived gradient (``bench/RESULTS.md``).
  Both halves are jitted helpers: JAX lowers each once per shape and calls it
  from every site (the full-size CDRL train step: 13,747 StableHLO lines
  instead of 17,411 with its 70 GroupNorms written out). Like any
  ``jax.custom_vjp`` function it has no forward-mode derivative.
  """
  return _group_norm_fwd(x, scale, bias, groups, epsilon)[0]


group_norm_fn.defvjp(_group_norm_fwd, _group_norm_bwd)


class GroupNorm(nn.Module):
  """``flax.linen.GroupNorm(num_groups, epsilon, use_fast_variance=False)``
  with the same parameters (``scale``, ``bias``) and results, computed in
  float32 by :func:`group_norm_fn` and returned in ``dtype`` (``None``: that
  of the inputs)."""
  num_groups: int = 32
  epsilon: float = 1e-6
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    if c % self.num_groups:
      raise ValueError(f'GroupNorm: {c} channels do not split into '
                       f'{self.num_groups} groups')
    scale = self.param('scale', nn.initializers.ones, (c,))
    bias = self.param('bias', nn.initializers.zeros, (c,))
    y = group_norm_fn(x.astype(jnp.float32), scale, bias, self.num_groups,
                      self.epsilon)
    return y.astype(self.dtype or x.dtype)


def group_norm(channels: int, dtype: Optional[Any] = None,
               name: Optional[str] = None) -> GroupNorm:
  """GroupNorm with 32 groups, or fewer when ``channels`` is not a multiple
  (the authors' U-Net always has 32), epsilon 1e-6, two-pass variance."""
  return GroupNorm(num_groups(channels), epsilon=1e-6, dtype=dtype, name=name)


def example_dropout(x: jax.Array, rate: float, keys: jax.Array) -> jax.Array:
  """Inverted dropout with one key per example (``keys`` ``[B]``).

  Example ``i``'s mask depends only on ``keys[i]``, so a sharded batch drops
  exactly what the whole batch would.
  """
  if rate <= 0.0:
    return x
  keep = jax.vmap(lambda k: jax.random.bernoulli(k, 1.0 - rate, x.shape[1:]))(
      keys)
  return jnp.where(keep, x / (1.0 - rate), 0).astype(x.dtype)


class AttentionBlock(nn.Module):
  """Single-head self-attention over the pixels, residual; the output
  projection's kernel starts at zero (the block starts as the identity).

  The CDRL authors' U-Net ``Attention`` with one head; their 1x1 convs
  ``to_qkv`` and ``to_out`` are dense layers of the same names here. With
  ``use_norm=False`` and ``kernel_init=tf_default_init()`` the DRL authors'
  ``attn_block`` at their default ``normalize=None`` (their ``q``, ``k``,
  ``v`` concatenated into ``to_qkv``).
  """
  dtype: Optional[Any] = None
  use_norm: bool = True
  kernel_init: Any = torch_default_init

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    y = group_norm(c, self.dtype, name='norm')(x) if self.use_norm else x
    q, k, v = jnp.split(nn.Dense(3 * c, dtype=self.dtype, name='to_qkv',
                                 kernel_init=self.kernel_init)(y), 3, axis=-1)
    q, k, v = (a.reshape(b, h * w, c) for a in (q, k, v))
    logits = jnp.einsum('bqc,bkc->bqk', q, k).astype(jnp.float32) * c**-0.5
    weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    y = jnp.einsum('bqk,bkc->bqc', weights, v).reshape(b, h, w, c)
    y = nn.Dense(c, dtype=self.dtype, kernel_init=nn.initializers.zeros,
                 name='to_out')(y)
    return x + y
