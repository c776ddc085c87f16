"""coopjax's DRL network reproduces the DRL authors' TF network.

tests/fixtures/drl/parity.npz was written by tools/make_drl_fixtures.py from
``ruiqigao/recovery_likelihood`` (``net_res_temb2`` at their flag defaults
plus attention, small width, random weights). Its Keras variables go through
:mod:`coopjax.convert.drl` into ``ResNetEnergy(arch='drl')``, which must
reproduce the energies, the input gradients and the spectral-norm vector
update of the authors' forward to 1e-5 relative (float32). (coopjax's
training-mode forward takes that update with the same ``power_step``:
tests/models/test_cdrl_parity.py.)
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax import models
from coopjax.convert import drl as convert
from coopjax.models.embedding import sinusoidal_embedding
from helpers.parity import close, load_fixture

NET = models.ResNetEnergy(width=8, mults=(1, 2), blocks_per_res=2,
                          temb_dim=8, arch='drl', attn_resolutions=(4,))


@pytest.fixture(scope='module')
def fx():
  return load_fixture('drl')


def weights(fx, prefix='w/'):
  return {k[len(prefix):]: v for k, v in fx.items() if k.startswith(prefix)}


def only_u(tree):
  return {jax.tree_util.keystr(p): v
          for p, v in jax.tree_util.tree_leaves_with_path(tree)
          if p[-1].key == 'u'}


def as_jax(tree):
  return jax.tree_util.tree_map(jnp.asarray, tree)


@pytest.fixture(scope='module')
def outputs(fx):
  """Imported variables and the eval-mode energies and input gradients."""
  emb = sinusoidal_embedding(fx['t'].astype(np.float32), 8, scale=1.0)
  variables = as_jax(convert.convert_variables(weights(fx)))

  def forward(module, z):
    return module.energy(z, module.embedding_features(emb))

  @jax.jit
  def run(variables, x):
    f, vjp = jax.vjp(lambda z: NET.apply(variables, z, method=forward), x)
    return f, vjp(jnp.ones_like(f))[0]

  return variables, run(variables, jnp.asarray(fx['x']))


def test_imported_tree_is_exactly_the_networks_variables(fx, outputs):
  shapes = jax.eval_shape(NET.init, jax.random.key(0), fx['x'],
                          jnp.zeros(len(fx['t'])))
  got = jax.tree_util.tree_map(jnp.shape, outputs[0])
  assert got == jax.tree_util.tree_map(lambda s: s.shape, shapes)


def test_energies_and_input_gradients_match_the_authors(fx, outputs):
  f, grad = outputs[1]
  close(f, fx['f'])
  close(grad, fx['grad'])


def test_spectral_norm_vectors_advance_as_the_authors(fx, outputs):
  # Their forward took one power iteration from the stored u (w/...) and
  # stored the new u (after/...); the import takes the same iteration (the
  # u, v an eval-mode forward uses, which gave the energies above).
  want = only_u(convert.convert_variables(
      {**weights(fx), **weights(fx, 'after/')}, advance=False)['batch_stats'])
  got = only_u(outputs[0]['batch_stats'])
  assert len(want) == 16  # every spectrally normalised layer (or stack)
  assert sorted(got) == sorted(want)
  for k in want:
    close(got[k], want[k])
  stored = only_u(convert.convert_variables(weights(fx), advance=False)[
      'batch_stats'])
  assert not np.allclose(stored[k], want[k], atol=1e-3)


def test_the_fixture_covers_both_branches_of_the_capped_norm(outputs):
  # conv2 is normalised as w / s * min(s, 1): blocks 0 have s < 1, blocks 1
  # s > 1 (stacked: the leading axis is the block).
  variables = jax.tree_util.tree_map(np.asarray, outputs[0])

  def sigma(block):
    kernel = variables['params'][block]['conv2']['kernel']
    stats = variables['batch_stats'][block]['conv2']
    mat = kernel.reshape(kernel.shape[:-4] + (-1, kernel.shape[-1]))
    return np.einsum('...i,...io,...o->...', stats['v'], mat, stats['u'])

  for level in range(2):
    assert np.all(sigma(f'first_{level}') < 1)
    assert np.all(sigma(f'rest_{level}') > 1)
