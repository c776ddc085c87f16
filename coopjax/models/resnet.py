"""The CDRL / DRL image EBM: a spectrally normalised ResNet ``f_theta(x, logsnr[, c])``.

The authors' EBM (``models/ebm.py``, ``models/ebm_cond.py`` of
``AlvinZhuyx/CDRL``; docs/algorithms.md, section 2.10): conv 3x3 to
``width`` channels; one stage per entry of ``mults`` with ``blocks_per_res``
residual blocks of ``width * mult`` channels, 2x2 average pooling between
stages; block = lrelu, conv3x3, + lrelu(Dense(lrelu(temb))), lrelu, conv3x3
times a learnable per-channel scale, + shortcut (3x3 conv where the channels
change); head: ReLU, sum over space, dot with a plain bias-free projection
of lrelu(temb). Spectral norm on every conv and dense layer but the head.

``arch='drl'`` is the DRL authors' ``net_res_temb2`` (``network.py`` of
``ruiqigao/recovery_likelihood`` at their flag defaults; docs/algorithms.md,
section 2.11), the same skeleton with four differences: no activation after
the blocks' time projection (``h + dense(lrelu(temb))``); the second conv of
a block initialised near zero and spectrally normalised with the norm capped
at 1 rather than set to 1 (``layers.spectral_normalised(bounded=True)``);
the head's projection has a bias; TF's initialisers (variance scaling,
fan_avg, uniform). Optionally self-attention after every block at the
resolutions ``attn_resolutions`` (their ``--use_attention``, off by default).

Like :class:`coopjax.models.mlp.MLPEnergy` the forward pass is split so that
samplers compute the noise-level part once per level:

* ``time_features(logsnr, update_stats, label)`` -> ``{'emb': ...,
  'head': ...}``, every leaf ``[N, channels]``;
* ``energy(x, features, update_stats)`` -> ``[B]`` float32.
"""

from typing import Any, Dict, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from coopjax.models.embedding import logsnr_embedding
from coopjax.models.layers import (AttentionBlock, SNConv, SNDense,
                                   compute_dtype, lrelu, model_labels,
                                   tf_default_init, torch_default_init)

Features = Dict[str, Any]
ARCHS = ('cdrl', 'drl')


class ResBlock(nn.Module):
  """The authors' ``ResnetBlock``: lrelu, conv3x3, + time projection
  ``lrelu(temb_map(lrelu(temb)))``, lrelu, conv3x3 times a per-channel ``g``,
  + shortcut (a 3x3 conv with bias where the channels change, else the
  identity). Parameter names follow the authors' state dict: ``conv1``,
  ``conv2``, ``temb_map``, ``short_cut``, ``g``.

  ``drl``: the DRL authors' ``resnet_block`` (no activation after
  ``temb_map``, ``conv2`` near zero at init with the capped spectral norm,
  TF's initialisers); at the resolutions ``attn_resolutions`` their
  ``attn_block`` follows the block (``attn``).
  """
  features: int
  use_sn: bool = True
  dtype: Optional[Any] = None
  drl: bool = False
  attn_resolutions: Sequence[int] = ()

  @nn.compact
  def __call__(self, x: jax.Array, emb: jax.Array,
               update_stats: bool = False) -> jax.Array:
    init = tf_default_init() if self.drl else torch_default_init

    def conv(name, kernel_init=init, bounded=False):
      return SNConv(self.features, 3, self.use_sn, dtype=self.dtype,
                    kernel_init=kernel_init, bounded=bounded, name=name)

    proj = SNDense(self.features, self.use_sn, name='temb_map',
                   kernel_init=init)(lrelu(emb), update_stats)
    if not self.drl:
      proj = lrelu(proj)
    h = conv('conv1')(lrelu(x), update_stats)
    h = h + proj[:, None, None, :].astype(h.dtype)
    g = self.param('g', nn.initializers.ones, (self.features,))
    conv2 = (conv('conv2', kernel_init=tf_default_init(0.0), bounded=True)
             if self.drl else conv('conv2'))
    h = conv2(lrelu(h), update_stats) * g.astype(h.dtype)
    if x.shape[-1] != self.features:
      x = conv('short_cut')(x, update_stats)
    h = h + x
    if h.shape[1] in self.attn_resolutions:
      h = AttentionBlock(self.dtype, use_norm=False, kernel_init=init,
                         name='attn')(h)
    return h


def _block_chain(block: ResBlock, h: jax.Array, emb: jax.Array,
                 update_stats: bool, length: int) -> jax.Array:
  """``length`` same-shape blocks in a row, as one ``nn.scan`` over their
  stacked variables (compiles one block instead of ``length``)."""

  def body(module, carry, e):
    return module(carry, e, update_stats), None

  scan = nn.scan(body, variable_axes={'params': 0, 'batch_stats': 0},
                 split_rngs={'params': True}, in_axes=nn.broadcast,
                 length=length)
  return scan(block, h, emb)[0]


class ResNetEnergy(nn.Module):
  """The CDRL / DRL image EBM ``f_theta(x, logsnr[, label]) -> [B]`` (higher = more likely).

  The CDRL authors' ``models/ebm.py`` (``ebm_cond.py`` with ``num_classes``);
  with ``arch='drl'`` the DRL authors' ``net_res_temb2``.
  Parameter names follow their state dict (see :mod:`coopjax.convert.cdrl`):
  ``temb_map1``, ``temb_map2``, ``y_map``, ``stem`` (their
  ``module_list.0``), ``temb_final``; the blocks of resolution ``i``:
  ``first_<i>`` and ``rest_<i>``, the other ``blocks_per_res - 1`` blocks
  (same shapes) with their variables stacked on a leading axis and run by
  one ``nn.scan``.

  Attributes:
    width: channels of the first stage (the authors tie it to ``temb_dim``:
      128 for CIFAR-10).
    mults: channel multiplier per resolution; its length is the number of
      resolutions (4 at 32x32, 5 at 64x64).
    blocks_per_res: residual blocks per resolution.
    temb_dim: sinusoidal embedding width; the embedding MLP is 4x wider.
    use_sn: spectral norm on every conv and dense layer but the head.
    num_classes: conditioning labels (0: unconditional); label 0 is the
      null class: the one-hot of ``num_classes + 1`` goes through a
      (spectrally normalised) dense layer added to the time embedding.
    dtype: compute dtype, 'float32' or 'bfloat16' (parameters and the energy
      stay float32).
    arch: 'cdrl' (the CDRL authors' network) or 'drl' (the DRL authors';
      see the module docstring and :mod:`coopjax.convert.drl`, which maps
      their variable names onto these).
    attn_resolutions: 'drl' only: resolutions (image sizes) with
      self-attention after every block (the authors: (16,) when
      ``--use_attention``, which is off by default).
  """
  width: int = 128
  mults: Sequence[int] = (1, 2, 2, 2)
  blocks_per_res: int = 8
  temb_dim: int = 128
  use_sn: bool = True
  num_classes: int = 0
  dtype: Any = 'float32'
  arch: str = 'cdrl'
  attn_resolutions: Sequence[int] = ()

  def setup(self):
    if self.arch not in ARCHS:
      raise ValueError(f'Unknown config.model.arch {self.arch!r}; expected '
                       f'one of {ARCHS}.')
    drl = self.arch == 'drl'
    if self.attn_resolutions and not drl:
      raise ValueError('config.model.attn (self-attention in the EBM) needs '
                       "config.model.arch='drl'; the CDRL network has none.")
    dtype = compute_dtype(self.dtype)
    init = tf_default_init() if drl else torch_default_init
    dense = lambda n, **kw: SNDense(n, kernel_init=init, **kw)
    emb_dim = 4 * self.temb_dim
    self.temb_map1 = dense(emb_dim, use_sn=self.use_sn)
    self.temb_map2 = dense(emb_dim, use_sn=self.use_sn)
    if self.num_classes:
      self.y_map = dense(emb_dim, use_sn=self.use_sn)
    self.stem = SNConv(self.width, 3, self.use_sn, dtype=dtype,
                       kernel_init=init)
    widths = [self.width * m for m in self.mults]
    block = lambda w: ResBlock(w, self.use_sn, dtype, drl,
                               tuple(self.attn_resolutions))
    self.first = [block(w) for w in widths]
    if self.blocks_per_res > 1:
      self.rest = [block(w) for w in widths]
    self.temb_final = dense(widths[-1], use_sn=False, use_bias=drl)

  def time_features(self, logsnr: jax.Array, update_stats: bool = False,
                    label: Optional[jax.Array] = None) -> Features:
    """Noise-level (and class) features, computed once per level.

    Args:
      logsnr: ``[N]`` noise levels.
      update_stats: advance the spectral-norm power iteration.
      label: ``[N]`` model labels (0 = null), or None (the null class for a
        conditional network).

    Returns:
      ``{'emb': [N, 4 temb_dim], 'head': [N, channels]}``, float32: the
      embedding the blocks project, and the head's projection.
    """
    return self.embedding_features(logsnr_embedding(logsnr, self.temb_dim),
                                   update_stats, label)

  def embedding_features(self, emb: jax.Array, update_stats: bool = False,
                         label: Optional[jax.Array] = None) -> Features:
    """:meth:`time_features` from the sinusoidal embedding ``[N, temb_dim]``
    itself (e.g. of DRL's integer level ``t - 1``, which the logSNR input
    cannot express at 0)."""
    emb = self.temb_map2(lrelu(self.temb_map1(emb, update_stats)),
                         update_stats)
    emb = self._add_label(emb, label, update_stats)
    return {'emb': emb, 'head': self.temb_final(lrelu(emb))}

  def _add_label(self, emb: jax.Array, label: Optional[jax.Array],
                 update_stats: bool):
    label = model_labels(label, emb.shape[0], self.num_classes, 'ResNetEnergy')
    if label is None:
      return emb
    one_hot = jax.nn.one_hot(label, self.num_classes + 1, dtype=emb.dtype)
    return emb + self.y_map(one_hot, update_stats)

  def energy(self, x: jax.Array, features: Features,
             update_stats: bool = False) -> jax.Array:
    """Network output ``f_theta(x)`` ``[B]`` (float32) given time features.

    Args:
      x: ``[B, H, W, C]`` images; H and W divisible by
        ``2 ** (len(mults) - 1)``.
      features: :meth:`time_features` of ``B`` (or broadcastable 1) levels.
      update_stats: advance the spectral-norm power iteration.
    """
    if x.ndim != 4:
      raise ValueError(f'ResNetEnergy expects images [B, H, W, C]; got shape '
                       f'{x.shape}.')
    h = self.stem(x.astype(compute_dtype(self.dtype)), update_stats)
    emb = features['emb']
    for i in range(len(self.mults)):
      if i:
        h = nn.avg_pool(h, (2, 2), strides=(2, 2))
      h = self.first[i](h, emb, update_stats)
      if self.blocks_per_res > 1:
        h = _block_chain(self.rest[i], h, emb, update_stats,
                         self.blocks_per_res - 1)
    pooled = jnp.sum(nn.relu(h).astype(jnp.float32), axis=(1, 2))
    return jnp.sum(pooled * features['head'].astype(jnp.float32), axis=-1)

  def __call__(self, x: jax.Array, logsnr: jax.Array,
               update_stats: bool = False,
               label: Optional[jax.Array] = None) -> jax.Array:
    return self.energy(x, self.time_features(logsnr, update_stats, label),
                       update_stats)
