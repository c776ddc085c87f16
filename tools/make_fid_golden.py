"""Regenerates tests/golden/pytorch_fid_outputs.npz: pytorch-fid's FID
Inception on fixed inputs, with the random weights of :func:`golden_weights`
(coopjax's seed-0 random Inception weights with non-trivial batch-norm
statistics), so that
tests/metrics/test_inception.py checks our network against pytorch-fid's
without torch. Two steps, in two environments::

    # 1. coopjax's venv: the weights as a pytorch-fid state dict
    PYTHONPATH=. python tools/make_fid_golden.py state /tmp/fid_sd.npz
    # 2. a venv with torch, torchvision and pytorch-fid (no download needed:
    #    the weights are random)
    python tools/make_fid_golden.py torch /tmp/fid_sd.npz \
        tests/golden/pytorch_fid_outputs.npz
"""

import importlib.util
import os
import sys

import numpy as np

SEED = 0


def inputs() -> np.ndarray:
  """The fixed images the golden outputs are of: ``[2, 8, 8, 3]`` in [-1, 1]."""
  return np.random.default_rng(SEED).uniform(-1, 1, (2, 8, 8, 3)).astype(
      np.float32)


def golden_weights():
  """Flat (``'a/b/c'``) coopjax Inception variables: ``random_weights(0)``
  with every batch norm's mean, variance, scale and bias drawn too."""
  from coopjax.metrics import inception  # pylint: disable=g-import-not-at-top
  flat = inception.flatten(inception.random_weights(SEED))
  rng = np.random.default_rng(SEED + 1)
  ranges = {'/mean': (-0.1, 0.1), '/var': (0.5, 1.5), '/scale': (0.5, 1.5),
            '/bias': (-0.1, 0.1)}
  for name in sorted(flat):
    for suffix, (lo, hi) in ranges.items():
      if name.endswith(suffix):
        flat[name] = rng.uniform(lo, hi, flat[name].shape).astype(np.float32)
  return flat


def write_state_dict(path: str) -> None:
  spec = importlib.util.spec_from_file_location(
      'convert_inception', os.path.join(os.path.dirname(__file__),
                                        'convert_inception.py'))
  conv = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(conv)
  state = conv.to_state_dict(golden_weights())
  np.savez(path, **state)


def pytorch_fid_net():
  """pytorch-fid's FID Inception (random torch initialisation), eval mode."""
  from pytorch_fid import inception as pi  # pylint: disable=g-import-not-at-top
  net = pi._inception_v3(num_classes=1008, aux_logits=False, weights=None)  # pylint: disable=protected-access
  for name, block in (('5b', pi.FIDInceptionA(192, 32)),
                      ('5c', pi.FIDInceptionA(256, 64)),
                      ('5d', pi.FIDInceptionA(288, 64)),
                      ('6b', pi.FIDInceptionC(768, 128)),
                      ('6c', pi.FIDInceptionC(768, 160)),
                      ('6d', pi.FIDInceptionC(768, 160)),
                      ('6e', pi.FIDInceptionC(768, 192)),
                      ('7b', pi.FIDInceptionE_1(1280)),
                      ('7c', pi.FIDInceptionE_2(2048))):
    setattr(net, 'Mixed_' + name, block)
  return net.eval()


def pytorch_fid_outputs(net, x: np.ndarray):
  """``(pool, logits)`` numpy of ``net`` for NHWC images in [-1, 1]
  (bilinear resize to 299, as coopjax's extractor)."""
  import torch  # pylint: disable=g-import-not-at-top
  functional = torch.nn.functional
  with torch.no_grad():
    h = functional.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2),
                               size=(299, 299), mode='bilinear',
                               align_corners=False)
    for name in ('Conv2d_1a_3x3', 'Conv2d_2a_3x3', 'Conv2d_2b_3x3',
                 'maxpool1', 'Conv2d_3b_1x1', 'Conv2d_4a_3x3', 'maxpool2',
                 'Mixed_5b', 'Mixed_5c', 'Mixed_5d', 'Mixed_6a', 'Mixed_6b',
                 'Mixed_6c', 'Mixed_6d', 'Mixed_6e', 'Mixed_7a', 'Mixed_7b',
                 'Mixed_7c'):
      h = getattr(net, name)(h)
    pool = functional.adaptive_avg_pool2d(h, 1).flatten(1)
    return pool.numpy(), net.fc(pool).numpy()


def torch_outputs(state_path: str, out_path: str) -> None:
  import torch  # pylint: disable=g-import-not-at-top
  net = pytorch_fid_net()
  with np.load(state_path) as f:
    state = {k: torch.from_numpy(f[k]) for k in f.files}
  for k in [k for k in state if k.endswith('.bn.weight')]:
    state[k.replace('.weight', '.num_batches_tracked')] = torch.tensor(0)
  net.load_state_dict(state, strict=True)
  x = inputs()
  pool, logits = pytorch_fid_outputs(net, x)
  np.savez_compressed(out_path, x=x, pool=pool, logits=logits)
  print(f'Wrote {out_path} (torch {torch.__version__}).')


if __name__ == '__main__':
  if sys.argv[1:2] == ['state'] and len(sys.argv) == 3:
    write_state_dict(sys.argv[2])
  elif sys.argv[1:2] == ['torch'] and len(sys.argv) == 4:
    torch_outputs(sys.argv[2], sys.argv[3])
  else:
    sys.exit(__doc__)
