"""Writes tests/fixtures/torch_file/small.pt, the reader's test checkpoint.

    /path/to/torch/python tools/make_torch_file_fixture.py \
        tests/fixtures/torch_file/small.pt

Needs torch (run once; the tests read the file without torch). Every tensor
is a function of ``arange`` so the test knows the values without torch; the
file has what real checkpoints have: DDP ``module.`` prefixes, a spectrally
normalised layer's ``weight_orig`` / ``weight_u`` / ``weight_v``, an
optimiser state, a list of tensors (torch_ema's ``shadow_params``), views
(transposed, sliced) and every dtype the reader maps.
"""

import argparse
import collections

import torch


def arange(*shape, dtype=torch.float32):
  n = 1
  for s in shape:
    n *= s
  return torch.arange(n, dtype=torch.float64).reshape(shape).to(dtype)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('out')
  args = parser.parse_args()
  torch.manual_seed(0)
  lin = torch.nn.utils.spectral_norm(torch.nn.Linear(3, 2))
  with torch.no_grad():
    lin.weight_orig.copy_(arange(2, 3) / 10)
    lin.bias.copy_(torch.tensor([0.5, -0.5]))
    lin.weight_u.copy_(torch.tensor([0.6, 0.8]))
    lin.weight_v.copy_(torch.tensor([0.0, 0.6, 0.8]))
  net = torch.nn.Sequential(lin)
  state = {k: v.clone() for k, v in net.state_dict().items()}
  opt = torch.optim.Adam(net.parameters())
  net(torch.ones(1, 3)).sum().backward()
  opt.step()
  big = arange(4, 5)
  tree = {
      'pi_state_dict': collections.OrderedDict(
          ('module.' + k, v) for k, v in state.items()),
      'ema': {'decay': 0.9999, 'num_updates': 3,
              'shadow_params': [arange(2), arange(2, 3) - 1]},
      'optimizer': opt.state_dict(),
      'dtypes': {
          'f64': arange(3, dtype=torch.float64),
          'f16': arange(3, dtype=torch.float16),
          'bf16': arange(3, dtype=torch.bfloat16) / 2,
          'i64': arange(3, dtype=torch.int64) - 1,
          'i32': arange(3, dtype=torch.int32),
          'u8': arange(3, dtype=torch.uint8),
          'bool': torch.tensor([True, False, True]),
          'scalar': torch.tensor(7.5),
      },
      'views': {'transposed': big.t(), 'sliced': big[1:3, 2:],
                'empty': torch.zeros(0, 3)},
  }
  torch.save(tree, args.out)


if __name__ == '__main__':
  main()
