"""Flax Linen networks: energies (EBMs) and initializers, one file per family."""

from typing import Any, Mapping, Optional

import flax.linen as nn
import jax

from coopjax.models.convnet import ConvEnergy
from coopjax.models.ebm_res import EBMRes
from coopjax.models.mlp import MLPEnergy, MLPInitializer
from coopjax.models.resnet import ResNetEnergy
from coopjax.models.unet import UNetInitializer

# convnet: a small image EBM (CPU demos); ebm_res: CoopFlow's, as the authors'
EBMS = ('mlp', 'resnet', 'convnet', 'ebm_res')
INITIALIZERS = ('mlp', 'unet', 'none')


def build_ebm(cfg) -> nn.Module:
  """The EBM named by ``config.model.ebm``."""
  if cfg.ebm == 'mlp':
    return MLPEnergy(width=cfg.width, mults=tuple(cfg.mults),
                     blocks_per_stage=cfg.blocks_per_stage,
                     temb_dim=cfg.temb_dim, use_sn=cfg.use_sn,
                     temb_mult=int(cfg.get('temb_mult', 4)))
  if cfg.ebm == 'resnet':
    return ResNetEnergy(width=cfg.width, mults=tuple(cfg.mults),
                        blocks_per_res=cfg.blocks_per_res,
                        temb_dim=cfg.temb_dim, use_sn=cfg.use_sn,
                        num_classes=int(cfg.num_classes),
                        dtype=cfg.dtype, arch=cfg.get('arch', 'cdrl'),
                        attn_resolutions=tuple(cfg.get('attn', ())))
  if cfg.ebm == 'convnet':
    return ConvEnergy(width=cfg.width, mults=tuple(cfg.mults),
                      blocks_per_res=cfg.blocks_per_res)
  if cfg.ebm == 'ebm_res':
    return EBMRes(width=cfg.width, mults=tuple(cfg.mults))
  raise ValueError(f'Unknown config.model.ebm {cfg.ebm!r}; known: {EBMS}.')


def build_initializer(cfg) -> Optional[nn.Module]:
  """The initializer named by ``config.model.initializer`` (None for 'none')."""
  if cfg.initializer == 'mlp':
    return MLPInitializer(width=cfg.init_width, temb_dim=cfg.temb_dim,
                          num_blocks=cfg.init_blocks)
  if cfg.initializer == 'unet':
    return UNetInitializer(width=cfg.init_width, mults=tuple(cfg.init_mults),
                           num_res_blocks=cfg.init_blocks,
                           attn_resolutions=tuple(cfg.init_attn),
                           dropout=float(cfg.init_dropout),
                           num_classes=int(cfg.num_classes),
                           dtype=cfg.dtype)
  if cfg.initializer == 'none':
    return None
  raise ValueError(f'Unknown config.model.initializer {cfg.initializer!r}; '
                   f'known: {INITIALIZERS}.')


def param_count(tree: Any) -> int:
  """Number of scalars in a pytree of arrays (or shape structs)."""
  return sum(int(x.size) for x in jax.tree_util.tree_leaves(tree))


def _human(n: int) -> str:
  for unit, scale in (('G', 1e9), ('M', 1e6), ('K', 1e3)):
    if n >= scale:
      return f'{n / scale:.1f}{unit}'
  return str(n)


def describe(params: Mapping[str, Any]) -> str:
  """Parameter counts per network, e.g. ``'ebm 34.8M, init 3.8M'``."""
  return ', '.join(f'{name} {_human(param_count(tree))}'
                   for name, tree in params.items())
