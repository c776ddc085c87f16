"""coopjax's CDRL networks reproduce the authors' PyTorch networks.

tests/fixtures/cdrl/parity.npz was written by tools/make_cdrl_fixtures.py
from ``AlvinZhuyx/CDRL`` (small widths, random weights). Its state dicts go
through :mod:`coopjax.convert.cdrl` into coopjax's networks, which must
reproduce every stored output to 1e-5 relative (float32): eval-mode
energies and input gradients, a training-mode energy and the spectral-norm
vectors it stores, U-Net outputs, and one sampling level with the noise the
authors' sampler drew.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import cdrl, models
from coopjax.cdrl import sampling, schedules
from coopjax.config import cdrl as cdrl_config
from coopjax.convert import cdrl as convert
from coopjax.models import layers
from coopjax.samplers import kernels
from coopjax.samplers import langevin as langevin_lib
from helpers.parity import close, load_fixture

NETS = {
    'ebm': models.ResNetEnergy(width=8, mults=(1, 2), blocks_per_res=3,
                               temb_dim=8),
    'cebm': models.ResNetEnergy(width=8, mults=(1, 2), blocks_per_res=1,
                                temb_dim=8, num_classes=3),
    'unet': models.UNetInitializer(width=8, mults=(1, 1), num_res_blocks=1,
                                   attn_resolutions=(4,), dropout=0.1),
    'cunet': models.UNetInitializer(width=8, mults=(1, 1), num_res_blocks=1,
                                    attn_resolutions=(4,), dropout=0.1,
                                    num_classes=3),
}


@pytest.fixture(scope='module')
def fx():
  return load_fixture('cdrl')


def state_dict(fx, net):
  return {k[len(net) + 1:]: v for k, v in fx.items()
          if k.startswith(net + '/')}


@pytest.fixture(scope='module')
def variables(fx):
  out = {}
  for net, module in NETS.items():
    blocks = getattr(module, 'blocks_per_res', 0)
    out[net] = jax.tree_util.tree_map(
        jnp.asarray, convert.convert_state_dict(state_dict(fx, net), blocks))
  return out


def test_imported_trees_are_exactly_the_networks_variables(fx, variables):
  x, logsnr = fx['x'], fx['logsnr']
  for net, module in NETS.items():
    label = {'label': fx['labels']} if module.num_classes else {}
    shapes = jax.eval_shape(module.init, jax.random.key(0), x, logsnr,
                            **label)
    assert not convert.mismatches(variables[net], shapes), net


def test_energies_gradients_and_initializer_outputs(fx, variables):
  x, logsnr, labels = fx['x'], fx['logsnr'], fx['labels']

  @jax.jit
  def outputs(v):
    def f_and_grad(net, **kw):
      run = lambda z: NETS[net].apply(v[net], z, logsnr, **kw)
      return run(x), jax.grad(lambda z: jnp.sum(run(z)))(x)

    (f, g), (cf, cg) = f_and_grad('ebm'), f_and_grad('cebm', label=labels)
    f_train, new = NETS['ebm'].apply(v['ebm'], x, logsnr, True,
                                     mutable=['batch_stats'])
    return dict(ebm_f=f, ebm_grad=g, cebm_f=cf, cebm_grad=cg,
                ebm_f_train=f_train, after=new['batch_stats'],
                unet_out=NETS['unet'].apply(v['unet'], x, logsnr),
                cunet_out=NETS['cunet'].apply(v['cunet'], x, logsnr,
                                              label=labels))

  out = outputs(variables)
  for name in ('ebm_f', 'ebm_grad', 'cebm_f', 'cebm_grad', 'ebm_f_train',
               'unet_out', 'cunet_out'):
    close(out[name], fx[name])
  # training mode: one power iteration, stored as the authors' buffers are
  after = convert.convert_state_dict(
      {**state_dict(fx, 'ebm'), **state_dict(fx, 'ebm_after')}, 3)
  jax.tree_util.tree_map(close, out['after'], after['batch_stats'])
  # the pure form gives the same vectors (scanned blocks included)
  pure = layers.power_iteration(variables['ebm']['params'],
                                variables['ebm']['batch_stats'])
  jax.tree_util.tree_map(close, pure, after['batch_stats'])
  # and the eval-mode outputs used the stored vectors, not new ones
  assert not np.allclose(out['ebm_f_train'], fx['ebm_f'], rtol=1e-6)


def test_one_sampling_level_with_the_authors_noise(fx, variables,
                                                   monkeypatch):
  t = int(fx['level_t'])
  noise = jnp.asarray(fx['level_noise'])  # proposal, then one per step
  steps = noise.shape[0] - 1
  model = cdrl.CDRLModel(
      ebm=NETS['ebm'], initializer=NETS['unet'],
      levels=schedules.levels_from_config(cdrl_config.schedule()),
      n_steps=steps)
  # the authors sampled after the training-mode forward: its u, v
  ebm_vars = jax.tree_util.tree_map(jnp.asarray, convert.convert_state_dict(
      {**state_dict(fx, 'ebm'), **state_dict(fx, 'ebm_after')}, 3))
  x_t = jnp.asarray(fx['level_xt'])
  tt = jnp.full((x_t.shape[0],), t, jnp.int32)
  keys = jax.random.split(jax.random.key(0), x_t.shape[0])
  # The chain's noise for step i is drawn from its i-th per-step keys: hand
  # out the authors' draw i instead (a one-hot pick, exact, under jit).
  step_keys = jax.random.key_data(langevin_lib.split_keys(keys, steps)[:, 0])

  def supplied(k, x, batch):
    del batch
    hit = jnp.all(jax.random.key_data(k) == step_keys, axis=(1, 2))
    return jnp.tensordot(hit.astype(x.dtype), noise[1:], 1)

  monkeypatch.setattr(sampling, 'per_example_normal',
                      lambda *a, **k: noise[0])
  monkeypatch.setattr(kernels, 'normal_like', supplied)

  # Not jitted as a whole: the proposal runs op by op (cheaper than
  # compiling the U-Net again), the chain compiles as it always does.
  y0 = sampling.propose(model, variables['unet']['params'], x_t, tt, keys)
  y_k, _ = sampling.refine(model, ebm_vars, y0, x_t, tt, keys)
  close(y0, fx['level_y0'])
  close(y_k / model.consts.y_scale[t], fx['level_x_prev'])
