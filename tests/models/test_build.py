"""coopjax.models: building networks from config.model, parameter counts."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from coopjax import models

from helpers import load_config
from helpers.networks import KEY, SHAPE, LOGSNR


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


def test_cifar10_networks_have_the_authors_parameter_counts():
  """The counts of the authors' networks (torch, AlvinZhuyx/CDRL at the
  settings of main_uncond.py); docs/algorithms.md, 2.10 (ImageNet32 too)."""
  cfg = load_config('cifar10').model
  x, logsnr = jnp.zeros((1, 32, 32, 3)), jnp.zeros(1)
  got = tuple(
      models.param_count(jax.eval_shape(net.init, KEY, x, logsnr)['params'])
      for net in (models.build_ebm(cfg), models.build_initializer(cfg)))
  assert got == (34_833_152, 3_769_795)


def test_cifar10_drl_network_has_the_drl_authors_parameter_count():
  """net_res_temb2 of ruiqigao/recovery_likelihood built in TF at their
  CIFAR-10 settings (ch 128, ch_mult (1, 2, 2, 2), --num_res_blocks=8, flag
  defaults: no attention): 34,833,408 trainable parameters (36,938,752 with
  --use_attention); docs/algorithms.md, 2.11."""
  cfg = load_config('cifar10', 'drl').model
  assert (cfg.arch, cfg.attn) == ('drl', ())
  x, logsnr = jnp.zeros((1, 32, 32, 3)), jnp.zeros(1)
  count = lambda c: models.param_count(
      jax.eval_shape(models.build_ebm(c).init, KEY, x, logsnr)['params'])
  assert count(cfg) == 34_833_408
  cfg.attn = (16,)
  assert count(cfg) == 36_938_752


@pytest.mark.parametrize('kw, match', [
    (dict(arch='nope'), "arch 'nope'"),
    (dict(attn_resolutions=(4,)), "arch='drl'")])
def test_unknown_arch_or_attention_in_the_cdrl_network_is_refused(kw, match):
  ebm = models.ResNetEnergy(width=8, mults=(1,), blocks_per_res=1,
                            temb_dim=8, **kw)
  with pytest.raises(ValueError, match=match):
    jax.eval_shape(ebm.init, KEY, jnp.zeros(SHAPE), LOGSNR)


def test_mlp_ebm_embedding_width_follows_temb_mult():
  """The 2-D EBM's embedding MLP is ``temb_mult * temb_dim`` wide (4x in the
  authors' toy script): its two layers' kernels, and the parameter count
  falls by exactly the embedding MLP's difference."""
  cfg = ml_collections.ConfigDict(dict(
      ebm='mlp', width=16, mults=(1, 2), blocks_per_stage=1, temb_dim=8,
      use_sn=True))
  x, logsnr = jnp.zeros((1, 2)), jnp.zeros(1)

  def params(mult):
    if mult is not None:
      cfg.temb_mult = mult
    return jax.eval_shape(models.build_ebm(cfg).init, KEY, x,
                          logsnr)['params']

  default, narrow = params(None), params(1)  # a config without the field: 4
  assert default['temb_in']['kernel'].shape == (8, 32)
  assert default['temb_out']['kernel'].shape == (32, 32)
  assert narrow['temb_in']['kernel'].shape == (8, 8)
  assert narrow['temb_out']['kernel'].shape == (8, 8)
  assert narrow['time_maps_0']['kernel'].shape == (8, 16)
  # in, out and the two time maps (16 and 32 wide): weights and biases
  mlp = lambda e: (8 * e + e) + (e * e + e) + (e * 16 + 16) + (e * 32 + 32)
  assert (models.param_count(default) - models.param_count(narrow)
          == mlp(32) - mlp(8))
