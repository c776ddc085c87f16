"""Writes the CDRL parity fixtures by running the authors' networks.

    /path/to/torch/python tools/make_cdrl_fixtures.py \
        --authors=/path/to/AlvinZhuyx/CDRL --out=tests/fixtures/cdrl

Needs torch and einops, and a copy of ``AlvinZhuyx/CDRL`` (its ``models/``
and ``main_uncond.py`` are imported from ``--authors``; nothing of it is
copied here). The tests (tests/models/test_cdrl_parity.py,
tests/convert/test_cdrl_import.py) read the outputs without torch.

Writes:

* ``parity.npz``: the authors' EBM, class-conditional EBM, U-Net and
  class-conditional U-Net at small widths with random weights (every
  parameter perturbed, so the zero-initialised layers count), as flat state
  dicts (``<net>/<torch name>``), and their outputs: energies and input
  gradients in eval mode, one training-mode energy with the spectral-norm
  vectors it leaves (``ebm_after/...``), U-Net outputs, and one CDRL sampling
  level (proposal and 2 Langevin steps of ``main_uncond.Langevin``) with
  every noise draw supplied. Images are stored NHWC.
* ``authors_small.pth.tar``: a checkpoint in the layout of the authors'
  training script (DDP ``module.`` names, torch_ema states, optimiser and
  scheduler states) of a 1-channel 8x8 EBM and U-Net of one resolution
  each (cheap to compile), for the import test.

The U-Nets' GroupNorms get ``min(32, largest divisor)`` groups instead of 32
so that 8-channel networks exist (the same rule as
``coopjax.models.layers.num_groups``, which gives 32 for the authors' widths).
"""

import argparse
import collections
import os
import sys
import types

import numpy as np
import torch

SEED = 0
N = 4
SIZE = 8
LEVEL = 3
LANGEVIN_STEPS = 2


def _groups(channels):
  return max(g for g in range(1, min(channels, 32) + 1) if channels % g == 0)


class FewerGroupNorm(torch.nn.GroupNorm):

  def __init__(self, num_groups, num_channels, eps=1e-5, affine=True):  # pylint: disable=redefined-outer-name
    del num_groups  # the authors' 32
    super().__init__(_groups(num_channels), num_channels, eps, affine)


def import_authors(path):
  """The authors' modules, with stubs for what only their training uses."""
  for name in ('torchvision', 'torchvision.transforms', 'torch_ema',
               'pytorch_fid_wrapper', 'matplotlib', 'matplotlib.pyplot'):
    if name not in sys.modules:
      sys.modules[name] = types.ModuleType(name)
  sys.modules['matplotlib'].pyplot = sys.modules['matplotlib.pyplot']
  sys.modules['torchvision'].transforms = sys.modules['torchvision.transforms']
  sys.modules['torch_ema'].ExponentialMovingAverage = None
  sys.path.insert(0, path)
  from models import ebm, ebm_cond, unet, unet_cond  # pylint: disable=g-import-not-at-top
  import main_uncond  # pylint: disable=g-import-not-at-top
  return ebm, ebm_cond, unet, unet_cond, main_uncond


def build_unet(cls, **kw):
  real = torch.nn.GroupNorm
  torch.nn.GroupNorm = FewerGroupNorm
  try:
    return cls(**kw)
  finally:
    torch.nn.GroupNorm = real


def perturb(net, scale=0.2):
  with torch.no_grad():
    for p in net.parameters():
      p.add_(scale * torch.randn_like(p))
  return net


def nhwc(x):
  return x.detach().permute(0, 2, 3, 1).numpy()


def state(net, prefix):
  return {f'{prefix}/{k}': v.detach().numpy().copy()
          for k, v in net.state_dict().items()}


def energy_and_grad(net, x, *args):
  x = x.clone().requires_grad_(True)
  f = net(x, *args)
  (g,) = torch.autograd.grad(f.sum(), [x])
  return f.detach().numpy(), nhwc(g)


def parity(authors, out):
  ebm, ebm_cond, unet, unet_cond, main = authors
  torch.manual_seed(SEED)
  x = torch.randn(N, 3, SIZE, SIZE)
  logsnr = torch.tensor([9.8, 2.0, -1.0, -5.1])
  labels = torch.tensor([0, 1, 2, 3])
  arrays = {'x': nhwc(x), 'logsnr': logsnr.numpy(), 'labels': labels.numpy()}

  pi = perturb(ebm.EBM(ch_mult=(1, 2), in_channel=3, temb_dim=8, n_blocks=3,
                       use_sn=True))
  pi.train()
  for _ in range(3):  # advance u, v away from their random start
    pi(torch.randn(N, 3, SIZE, SIZE), logsnr.clone())
  pi.eval()
  arrays.update(state(pi, 'ebm'))
  arrays['ebm_f'], arrays['ebm_grad'] = energy_and_grad(pi, x, logsnr.clone())
  pi.train()
  arrays['ebm_f_train'] = pi(x, logsnr.clone()).detach().numpy()
  arrays.update({k.replace('ebm/', 'ebm_after/'): v
                 for k, v in state(pi, 'ebm').items()
                 if k.endswith(('weight_u', 'weight_v'))})
  pi.eval()

  cpi = perturb(ebm_cond.EBM(ch_mult=(1, 2), in_channel=3, temb_dim=8,
                             n_blocks=1, use_sn=True, n_class=3))
  cpi.train()
  cpi(torch.randn(N, 3, SIZE, SIZE), logsnr.clone(), labels)
  cpi.eval()
  arrays.update(state(cpi, 'cebm'))
  arrays['cebm_f'], arrays['cebm_grad'] = energy_and_grad(
      cpi, x, logsnr.clone(), labels)

  kw = dict(dim=8, dim_mults=(1, 1), channels=3, im_sz=SIZE,
            attn_resolutions=[4], num_res_blocks=1, dropout=0.1,
            tanh_out=False, residual=True)
  p = perturb(build_unet(unet.Unet, **kw)).eval()
  cp = perturb(build_unet(unet_cond.Unet, n_class=3, **kw)).eval()
  arrays.update(state(p, 'unet'))
  arrays.update(state(cp, 'cunet'))
  with torch.no_grad():
    arrays['unet_out'] = nhwc(p(x, logsnr.clone()))
    arrays['cunet_out'] = nhwc(cp(x, logsnr.clone(), labels))

  arrays.update(sampling_level(main, pi, p))
  np.savez_compressed(os.path.join(out, 'parity.npz'), **arrays)


def sampling_level(main, pi, p):
  """Level LEVEL of the authors' sampler: proposal + Langevin, noise given."""
  n = main.n_interval
  xt = torch.randn(N, 3, SIZE, SIZE)
  noise = [torch.randn(N, 3, SIZE, SIZE) for _ in range(1 + LANGEVIN_STEPS)]
  i = torch.full((N,), float(LEVEL))
  sched = lambda u: main.logsnr_schedule_fn(u, logsnr_min=main.logsnr_min,
                                            logsnr_max=main.logsnr_max)
  logsnr_t, logsnr_s = sched(i / n), sched((i - 1.0) / n)
  is_final = (i == n).float()
  a_t, a_s = torch.sigmoid(logsnr_t), torch.sigmoid(logsnr_s)
  as_t = a_t / a_s
  as_t_mul = torch.where(is_final > 0, torch.ones_like(as_t), as_t)
  beta_tilde = (1.0 - a_s) / (1.0 - a_t) * (1.0 - as_t)
  with torch.no_grad():
    y0 = p(xt, logsnr_t.clone()) + torch.sqrt(beta_tilde * as_t_mul).reshape(
        N, 1, 1, 1) * noise[0]
  draws = iter(noise[1:])
  real = torch.randn_like
  torch.randn_like = lambda like: next(draws).clone()
  try:
    y = y0.clone().requires_grad_(True)
    x_prev = main.Langevin(pi, y, xt, logsnr_t, logsnr_s, is_final,
                           n_step=LANGEVIN_STEPS)
  finally:
    torch.randn_like = real
  return {'level_t': np.int32(LEVEL), 'level_xt': nhwc(xt),
          'level_noise': np.stack([nhwc(z) for z in noise]),
          'level_y0': nhwc(y0), 'level_x_prev': nhwc(x_prev)}


def checkpoint(authors, out):
  """A small checkpoint in the layout the authors' training script saves."""
  ebm, _, unet, _, _ = authors
  torch.manual_seed(SEED + 1)
  pi = perturb(ebm.EBM(ch_mult=(1,), in_channel=1, temb_dim=8, n_blocks=1,
                       use_sn=True))
  pi.train()
  pi(torch.randn(2, 1, SIZE, SIZE), torch.zeros(2))
  p = perturb(build_unet(unet.Unet, dim=8, dim_mults=(1,), channels=1,
                         im_sz=SIZE, attn_resolutions=[], num_res_blocks=1,
                         tanh_out=False, residual=True))
  ddp = lambda net: collections.OrderedDict(
      ('module.' + k, v) for k, v in net.state_dict().items())

  def ema(net):
    return {'decay': 0.9999, 'num_updates': 7,
            'shadow_params': [q.detach() + 0.01 * torch.randn_like(q)
                              for q in net.parameters()],
            'collected_params': None}

  optimizers = {k: torch.optim.Adam(net.parameters(), lr=1e-4)
                for k, net in (('pi', pi), ('p', p))}
  schedulers = {k: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1.0)
                for k, o in optimizers.items()}
  torch.save({
      'pi_state_dict': ddp(pi), 'p_state_dict': ddp(p),
      'pi_ema_state_dict': ema(pi), 'p_ema_state_dict': ema(p),
      'pi_optimizer': optimizers['pi'].state_dict(),
      'p_optimizer': optimizers['p'].state_dict(),
      'pi_lr_scheduler': schedulers['pi'].state_dict(),
      'p_lr_scheduler': schedulers['p'].state_dict(),
  }, os.path.join(out, 'authors_small.pth.tar'))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--authors', required=True,
                      help='a checkout of AlvinZhuyx/CDRL')
  parser.add_argument('--out', required=True)
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  authors = import_authors(os.path.abspath(args.authors))
  parity(authors, args.out)
  checkpoint(authors, args.out)


if __name__ == '__main__':
  main()
