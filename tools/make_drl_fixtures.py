"""Writes the DRL network parity fixture by running the DRL authors' TF code.

    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu tf_keras
    /tmp/tfenv/bin/python tools/make_drl_fixtures.py \
        --authors=/path/to/ruiqigao/recovery_likelihood --out=tests/fixtures/drl

Needs TensorFlow 2 with legacy Keras (``tf_keras``; the authors' layers use
the Keras 2 ``add_weight`` signature, so ``TF_USE_LEGACY_KERAS=1`` is set
here) and a copy of ``ruiqigao/recovery_likelihood`` (its ``config.py``,
``network.py`` and ``nn.py`` are imported from ``--authors``; nothing of it
is copied here). ``tensorflow_addons`` is replaced by an empty module: it is
only used for the ``--normalize`` layers, off at the authors' defaults.
Made with TF 2.21.0 / tf_keras 2.21.0 on CPU.

Writes ``parity.npz``: ``net_res_temb2`` at the authors' flag defaults (lrelu,
final ReLU, no normalisation, average-pool downsampling, spectral norm, conv
shortcuts, learnable conv2 scale) plus ``--use_attention``, at a small width
(ch 8, ch_mult (1, 2), 2 blocks per resolution, attention at 4x4, 8x8x3
inputs); random weights (the near-zero conv2 kernels of blocks 0 scaled so
that their spectral norm is below 1, the capped branch; the others above).
Entries: ``w/<Keras variable name>`` (weights and the spectral-norm ``sn_u``
before the forward), ``after/<name>`` (``sn_u`` after one forward), ``x``
``[N, 8, 8, 3]``, ``t`` ``[N]`` (their 0-based level index, 0 included),
``f`` (energies of that forward) and ``grad`` (d sum(f) / dx).
The test is tests/models/test_drl_parity.py (no TF needed).
"""

import argparse
import os
import sys
import types

import numpy as np

SEED = 0
N = 4
SIZE = 8
CH, CH_MULT, BLOCKS, ATTN = 8, (1, 2), 2, (4,)
LEVELS = (0, 1, 3, 5)


def import_authors(path):
  """The authors' ``config.FLAGS`` and ``network`` module."""
  os.environ['TF_USE_LEGACY_KERAS'] = '1'
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  sys.path.insert(0, path)
  sys.modules.setdefault('tensorflow_addons',
                         types.ModuleType('tensorflow_addons'))
  from config import FLAGS  # pylint: disable=import-outside-toplevel
  FLAGS(['make_drl_fixtures'])  # the flag defaults
  FLAGS.use_attention = True
  import network  # pylint: disable=import-outside-toplevel
  return FLAGS, network


def randomise(net, rng):
  """Random weights; returns ``{name: array}`` of every variable."""
  out = {}
  for var in net.weights:
    shape = tuple(var.shape)
    name = var.name
    if name.endswith('sn_u:0'):
      value = rng.normal(size=shape)
    elif name.endswith('/W:0'):
      fan_in = int(np.prod(shape[:-1]))
      value = rng.normal(size=shape) / np.sqrt(fan_in)
      if '/conv2/' in name:  # sigma < 1 in blocks 0, > 1 in blocks 1
        value *= 0.05 if '_block_0/' in name else 3.0
    elif name.endswith('/g:0'):
      value = 1.0 + 0.2 * rng.normal(size=shape)
    else:  # biases
      value = 0.1 * rng.normal(size=shape)
    var.assign(value.astype(np.float32))
    out[name] = value.astype(np.float32)
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--authors', required=True,
                      help='a copy of ruiqigao/recovery_likelihood')
  parser.add_argument('--out', required=True, help='the fixture folder')
  args = parser.parse_args()
  _, network = import_authors(os.path.abspath(args.authors))
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  rng = np.random.default_rng(SEED)
  net = network.net_res_temb2(name='net', ch=CH, ch_mult=CH_MULT,
                              num_res_blocks=BLOCKS, attn_resolutions=ATTN)
  x = rng.normal(size=(N, SIZE, SIZE, 3)).astype(np.float32)
  t = np.asarray(LEVELS, np.int32)
  net(tf.constant(x), tf.constant(t), dropout=0.)  # builds the variables
  before = randomise(net, rng)

  xt = tf.constant(x)
  with tf.GradientTape() as tape:
    tape.watch(xt)
    f = net(xt, tf.constant(t), dropout=0.)
    total = tf.reduce_sum(f)
  grad = tape.gradient(total, xt)
  after = {v.name: v.numpy() for v in net.weights if v.name.endswith('sn_u:0')}
  moved = max(np.abs(after[k] - before[k]).max() for k in after)
  assert moved > 1e-3, 'the forward did not update sn_u'

  out = {f'w/{k}': v for k, v in before.items()}
  out.update({f'after/{k}': v for k, v in after.items()})
  out.update(x=x, t=t, f=f.numpy(), grad=grad.numpy())
  os.makedirs(args.out, exist_ok=True)
  path = os.path.join(args.out, 'parity.npz')
  np.savez_compressed(path, **out)
  print(f'{path}: {len(before)} variables, {os.path.getsize(path)} bytes; '
        f'f = {f.numpy()}')


if __name__ == '__main__':
  main()
