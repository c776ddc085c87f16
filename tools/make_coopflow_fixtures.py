"""Makes tests/fixtures/coopflow_parity.npz (and flowpp_blocks_parity.npz,
Flow++ with 3 blocks per coupling network) with the authors' PyTorch code.

    /work/torchenv/bin/python tools/make_coopflow_fixtures.py \
        --coopflow=/path/to/AlvinZhuyx/CoopFlow \
        --latent_flow=/path/to/jianwen-xie/Latent-Space-Normalizing-Flow

Small networks with random weights (perturbed so that zero-initialised and
unit-initialised parameters matter), their state dicts (``<net>/<name>``) and
inputs and outputs (``<net>:<what>``), all float32, NCHW as PyTorch has
them. Tests (tests/convert/test_coopflow_parity.py) convert the state dicts
with coopjax.convert and compare, without torch. Run once; commit the npz.
"""

import argparse
import importlib
import math
import os
import sys
import types

import numpy as np
import torch


def _perturb(module, scale, skip=()):
  """Adds ``scale * N(0, 1) * (|p|.mean() + 0.1)`` to every parameter."""
  with torch.no_grad():
    for name, p in module.named_parameters():
      if any(s in name for s in skip):
        continue
      p.add_(scale * torch.randn_like(p) * (p.abs().mean() + 0.1))


def _state(prefix, module, out):
  for name, t in module.state_dict().items():
    if t.dtype.is_floating_point:
      out[f'{prefix}/{name}'] = t.detach().numpy().astype(np.float32)


def ebm(repo, out):
  sys.path.insert(0, repo)
  from models.ebm.ebm import EBM_res
  net = EBM_res(n_c=3, n_f=4, img_size=32).eval()
  _perturb(net, 0.05)
  x = torch.rand(3, 3, 32, 32) * 2 - 1
  _state('ebm', net, out)
  out['ebm:x'] = x.numpy()
  out['ebm:f'] = net(x).detach().numpy()


def flowpp(repo, out, prefix='flowpp', num_blocks=1, seed=1):
  """Flow++ with ``num_blocks`` blocks per coupling network (and in the
  dequantiser's), arrays named ``<prefix>/...`` and ``<prefix>:...``."""
  from models.flowplusplus import FlowPlusPlus
  torch.manual_seed(seed)
  net = FlowPlusPlus(scales=[(0, 1), (1, 1)], in_shape=(1, 4, 4),
                     mid_channels=4, num_blocks=num_blocks,
                     num_dequant_blocks=num_blocks,
                     num_components=3, use_attn=True, drop_prob=0.2)
  # data-dependent ActNorm init: one training-mode forward pass
  levels = torch.randint(0, 256, (16, 1, 4, 4)).float()
  net.train()
  with torch.no_grad():
    net(levels / 127.5 - 1)
  net.eval()
  _perturb(net, 0.1, skip=('is_initialized',))
  x = torch.randint(0, 256, (3, 1, 4, 4)).float() / 127.5 - 1
  u = torch.randn(3, 1, 4, 4)
  real_randn_like = torch.randn_like
  torch.randn_like = lambda t, **kw: u.clone()  # the dequantiser's noise
  try:
    with torch.no_grad():
      z, sldj = net(x)
  finally:
    torch.randn_like = real_randn_like
  zr = torch.randn(3, 1, 4, 4)
  with torch.no_grad():
    xr, _ = net(zr, reverse=True)
  _state(prefix, net, out)
  out.update({f'{prefix}:x': x.numpy(), f'{prefix}:u': u.numpy(),
              f'{prefix}:z': z.numpy(), f'{prefix}:sldj': sldj.numpy(),
              f'{prefix}:z_rev': zr.numpy(), f'{prefix}:logits_rev':
              xr.numpy(),
              f'{prefix}:sample': (2 * torch.sigmoid(xr) - 1).numpy()})


def latent_flow(repo, out):
  sys.modules.setdefault('pygrid', types.ModuleType('pygrid'))
  sys.path.insert(0, repo)
  model = importlib.import_module('model')
  for dataset, nz in (('svhn', 8), ('cifar10', 8)):
    args = argparse.Namespace(dataset=dataset, ngf=4, nz=nz, nc=3,
                              g_activation='lrelu', g_activation_leak=0.2,
                              g_batchnorm=False)
    gen = model._netG(args)
    gen.apply(model.weights_init_xavier)
    z = torch.randn(2, nz, 1, 1)
    _state(f'gen_{dataset}', gen, out)
    out[f'gen_{dataset}:z'] = z.numpy()
    out[f'gen_{dataset}:x'] = gen(z).detach().numpy()
  hps = argparse.Namespace(f_n_levels=1, f_depth=2, f_flow_permutation=2,
                           f_width=8, f_flow_coupling=1)
  prior = model._netF(hps, nz=8)
  _perturb(prior, 0.1)
  z = torch.randn(4, 8)
  with torch.no_grad():
    z1, logdet, _ = prior(z, objective=torch.zeros(4))
    # the authors' reverse pass divides a view of its input in place
    back = prior(z1.clone(), objective=torch.zeros(4), reverse=True)
  _state('prior', prior, out)
  out.update({'prior:z': z.numpy(), 'prior:eps': z1.numpy(),
              'prior:logdet': logdet.numpy(), 'prior:back': back.numpy()})


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--coopflow', required=True)
  parser.add_argument('--latent_flow', required=True)
  parser.add_argument('--out', default=os.path.join(
      os.path.dirname(__file__), '..', 'tests', 'fixtures',
      'coopflow_parity.npz'))
  parser.add_argument('--blocks_out', default=os.path.join(
      os.path.dirname(__file__), '..', 'tests', 'fixtures',
      'flowpp_blocks_parity.npz'))
  args = parser.parse_args()
  torch.manual_seed(0)
  torch.set_default_dtype(torch.float32)
  out = {}
  ebm(args.coopflow, out)
  flowpp(args.coopflow, out)
  # Three blocks per coupling network (coopjax stacks and scans them), in
  # a file of its own: coopflow_parity.npz need not be remade (the authors'
  # InvConv initialises from NumPy's unseeded generator).
  blocks = {}
  flowpp(args.coopflow, blocks, 'flowpp3', num_blocks=3, seed=3)
  sys.path.remove(args.coopflow)
  for name in [m for m in sys.modules if m == 'models' or
               m.startswith('models.') or m == 'util' or
               m.startswith('util.')]:
    del sys.modules[name]
  latent_flow(args.latent_flow, out)
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  np.savez_compressed(args.out, **out)
  print(f'{args.out}: {len(out)} arrays, {os.path.getsize(args.out)} bytes')
  np.savez_compressed(args.blocks_out, **blocks)
  print(f'{args.blocks_out}: {len(blocks)} arrays, '
        f'{os.path.getsize(args.blocks_out)} bytes')


if __name__ == '__main__':
  main()
