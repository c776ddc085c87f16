"""CDRL on CelebA 64x64 for inpainting (unconditional, five resolutions).

    python -m coopjax.main --config=configs/celeba_inpaint.py --workdir=runs/celeba_inpaint
    python -m coopjax.main --config=configs/celeba_inpaint.py --workdir=runs/celeba_inpaint --mode=inpaint

``--mode=inpaint`` noises the observed pixels to each level, resets them after
every proposal and Langevin step, and keeps them exactly in the output;
``--config.task.mask=free`` uses free-form strokes instead of the centre square.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cifar10  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config():
  c = cifar10.get_config()
  c.data.update(name='celeb_a', image_size=64, random_flip=True)
  c.model.update(mults=(1, 2, 2, 2, 2), init_mults=(1, 1, 2, 2),
                 init_attn=(16, 8))
  c.data.batch_size = 128
  c.task.update(mask='square', num=64)
  return c
