"""Flax Linen networks: energies (EBMs) and initializers, one file per family."""

from typing import Optional

import flax.linen as nn

from coopjax.models.mlp import MLPEnergy, MLPInitializer

EBMS = ('mlp',)
INITIALIZERS = ('mlp', 'none')


def build_ebm(cfg) -> nn.Module:
  """The EBM named by ``config.model.ebm``."""
  if cfg.ebm == 'mlp':
    return MLPEnergy(width=cfg.width, mults=tuple(cfg.mults),
                     blocks_per_stage=cfg.blocks_per_stage,
                     temb_dim=cfg.temb_dim, use_sn=cfg.use_sn)
  raise ValueError(f'Unknown config.model.ebm {cfg.ebm!r}; known: {EBMS}.')


def build_initializer(cfg) -> Optional[nn.Module]:
  """The initializer named by ``config.model.initializer`` (None for 'none')."""
  if cfg.initializer == 'mlp':
    return MLPInitializer(width=cfg.init_width, temb_dim=cfg.temb_dim,
                          num_blocks=cfg.init_blocks)
  if cfg.initializer == 'none':
    return None
  raise ValueError(f'Unknown config.model.initializer {cfg.initializer!r}; '
                   f'known: {INITIALIZERS}.')
