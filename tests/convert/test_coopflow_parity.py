"""Parity with the authors' PyTorch code, without torch: the state dicts in
tests/fixtures/coopflow_parity.npz and flowpp_blocks_parity.npz (made by
tools/make_coopflow_fixtures.py from AlvinZhuyx/CoopFlow and
jianwen-xie/Latent-Space-Normalizing-Flow, small widths, random weights)
are converted by coopjax.convert and the networks' outputs compared with
the authors' to 1e-5 relative."""

import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coopjax.convert import coopflow as convert_coopflow
from coopjax.convert import latent_flow as convert_latent_flow
from coopjax.convert.common import check_shapes
from coopjax.flows import LatentGlow
from coopjax.flows.flowpp import FlowPlusPlus
from coopjax.models import EBMRes
from coopjax.models.generator import ReferenceGenerator

from helpers.networks import KEY

FIXTURE = os.path.join(os.path.dirname(__file__), '..', 'fixtures',
                       'coopflow_parity.npz')
FIXTURE_BLOCKS = os.path.join(os.path.dirname(FIXTURE),
                              'flowpp_blocks_parity.npz')
_jit = functools.partial(jax.jit,
                         compiler_options={'xla_backend_optimization_level': 0})


@pytest.fixture(scope='module')
def fx():
  with np.load(FIXTURE) as data:
    return {k: data[k] for k in data.files}


def _state(fx, net):
  return {k.split('/', 1)[1]: v for k, v in fx.items()
          if k.startswith(net + '/')}


def nhwc(a):
  return np.transpose(a, (0, 2, 3, 1))


def close(got, want, rtol=1e-5):
  """|got - want| <= rtol * max|want| (relative to the array's scale)."""
  got, want = np.asarray(got), np.asarray(want)
  assert got.shape == want.shape
  scale = np.max(np.abs(want))
  np.testing.assert_allclose(got, want, rtol=0, atol=rtol * scale)


def _checked(module, params, *args, rngs=None):
  wanted = jax.eval_shape(
      lambda: module.init({'params': KEY, 'dequant': KEY}, *args))['params']
  check_shapes(params, wanted, type(module).__name__)
  return {'params': jax.tree_util.tree_map(jnp.asarray, params)}


def test_ebm_res_energies(fx):
  x = nhwc(fx['ebm:x'])
  model = EBMRes(width=4, mults=(2, 4, 8))
  params = _checked(model, convert_coopflow.ebm_res_params(
      _state(fx, 'ebm')), x[:1])
  close(_jit(model.apply)(params, x), fx['ebm:f'])


def test_generators(fx):
  for name, base, last in (('svhn', 4, 2), ('cifar10', 8, 1)):
    z = fx[f'gen_{name}:z'][:, :, 0, 0]
    gen = ReferenceGenerator((32, 32, 3), ngf=4, base=base, last_stride=last)
    params = _checked(gen, convert_latent_flow.generator_params(
        _state(fx, f'gen_{name}')), z)
    close(_jit(gen.apply)(params, z), nhwc(fx[f'gen_{name}:x']))


def test_latent_flow_prior_forward_logdet_and_inverse(fx):
  flow = LatentGlow(features=8, num_steps=2, hidden=8)
  z = fx['prior:z']
  params = _checked(flow, convert_latent_flow.prior_params(
      _state(fx, 'prior')), z)
  eps, logdet = _jit(functools.partial(flow.apply,
                                       method=LatentGlow.forward))(params, z)
  close(eps, fx['prior:eps'])
  close(logdet, fx['prior:logdet'])
  back = _jit(functools.partial(flow.apply, method=LatentGlow.inverse))(
      params, jnp.asarray(fx['prior:eps']))
  close(back, fx['prior:back'])


FLOWPP = FlowPlusPlus((4, 4, 1), scales=((0, 1), (1, 1)), mid_channels=4,
                      num_blocks=1, num_dequant_blocks=1, num_components=3)


def _check_flowpp(fx, name, flow):
  x, u = nhwc(fx[f'{name}:x']), nhwc(fx[f'{name}:u'])
  # (no shape check: a wrong shape fails in apply; tracing init costs)
  params = {'params': jax.tree_util.tree_map(
      jnp.asarray, convert_coopflow.flowpp_params(_state(fx, name)))}
  z, logdet = _jit(functools.partial(flow.apply,
                                     method=FlowPlusPlus.forward))(
                                         params, x, u)
  close(z, nhwc(fx[f'{name}:z']).reshape(3, -1))
  # forward's logdet is the authors' sldj - D log 2 (the [-1, 1] scale)
  close(logdet + 16 * math.log(2.0), fx[f'{name}:sldj'])
  # the inverse (bisection in both) and the authors' sampler 2 sigmoid - 1
  zr = nhwc(fx[f'{name}:z_rev']).reshape(3, -1)
  sampler = flow.clone(reference_sampler=True)
  close(_jit(functools.partial(sampler.apply, method=FlowPlusPlus.inverse))(
      params, zr), nhwc(fx[f'{name}:sample']))


def test_flowpp_log_density_latent_and_inverse(fx):
  _check_flowpp(fx, 'flowpp', FLOWPP)


def test_flowpp_with_three_blocks_per_coupling_network():
  """The importer stacks the authors' per-block weights in block order for
  the scanned blocks (tests/fixtures/flowpp_blocks_parity.npz)."""
  with np.load(FIXTURE_BLOCKS) as data:
    fx3 = {k: data[k] for k in data.files}
  _check_flowpp(fx3, 'flowpp3', FLOWPP.clone(num_blocks=3,
                                             num_dequant_blocks=3))


def test_import_writes_a_workdir_that_restores_the_authors_networks(
    fx, tmp_path):
  from coopjax.convert.common import load_config, write_workdir
  from coopjax.trainer import checkpoint
  config = load_config(os.path.join(os.path.dirname(__file__), '..', '..',
                                    'configs', 'latent_flow_svhn.py'))
  config.model.update(latent_dim=8, gen_ngf=4, flow_steps=2, flow_hidden=8)
  state = {f'netG.{k}': v for k, v in _state(fx, 'gen_svhn').items()}
  state.update({f'netF.module.{k}': v
                for k, v in _state(fx, 'prior').items()})
  params = convert_latent_flow.checkpoint_params(state)
  workdir = str(tmp_path / 'authors')
  write_workdir(config, workdir, params,
                {'x': np.zeros((2, 32, 32, 3), np.float32)})
  step, tree = checkpoint.read_latest(workdir)
  assert step == 0
  gen = ReferenceGenerator((32, 32, 3), ngf=4)
  z = fx['gen_svhn:z'][:, :, 0, 0]
  close(_jit(gen.apply)({'params': tree['ema']['gen']}, z),
        nhwc(fx['gen_svhn:x']))
  with pytest.raises(FileExistsError, match='new --workdir'):
    write_workdir(config, workdir, params,
                  {'x': np.zeros((2, 32, 32, 3), np.float32)})
  config.model.gen_ngf = 8
  with pytest.raises(ValueError, match='do not fit'):
    write_workdir(config, str(tmp_path / 'other'), params,
                  {'x': np.zeros((2, 32, 32, 3), np.float32)})
