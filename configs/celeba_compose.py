"""CDRL on CelebA 64x64 conditioned on attributes, for composing concepts.

    python -m coopjax.main --config=configs/celeba_compose.py --workdir=runs/celeba_compose
    python -m coopjax.main --config=configs/celeba_compose.py --workdir=runs/celeba_compose --mode=compose

Each binary attribute of ``data.attributes`` (Male, Smiling, Young) is two
concepts (absent / present); a training example is conditioned on one of its
attributes at random (or on null with probability 0.1). ``--mode=compose``
samples ``f(y|null) + sum_i (1 + w) [f(y|c_i) - f(y|null)]`` for
``task.concepts`` (default: male, smiling, young). Five resolutions for 64x64.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cifar10  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config():
  c = cifar10.get_config()
  c.data.update(name='celeb_a', image_size=64, random_flip=True,
                attributes=('Male', 'Smiling', 'Young'))
  c.model.update(num_classes=6, mults=(1, 2, 2, 2, 2),
                 init_mults=(1, 1, 2, 2), init_attn=(16, 8))
  c.data.batch_size = 128
  c.task.update(concepts=((0, 1), (1, 1), (2, 1)), compose_weight=1.0,
                num=64)
  return c
