"""Class-conditional CDRL on ImageNet 32x32 with classifier-free guidance.

    python -m coopjax.main --config=configs/imagenet32_cond.py --workdir=runs/in32

The one-hot label (0 = null) goes through a dense layer (spectrally
normalised in the EBM) added to the noise-level embedding; each label is
dropped to the null class with probability 0.1 during training. Samples at
guidance weight ``sample.guidance`` (paper: best FID 6.18 at w = 0.7);
``--mode=guided`` samples every class at each of ``task.guidance_weights``.
tfds ``imagenet_resized/32x32`` carries the labels (``downsampled_imagenet``
has none).

Variant ``:drl``: the DRL baseline (no initializer, K = 30, linear schedule).
"""

from coopjax.config import cdrl as base
from coopjax.config import variants


def get_config(variant: str = ''):
  """Returns the config; ``variant`` is '' or 'drl'."""
  c = base.get_config()
  c.data.update(name='imagenet_resized/32x32', num_test=10000)
  # The authors' ImageNet32 initializer has 2 residual blocks per level;
  # their run is 1M iterations.
  c.model.update(num_classes=1000, label_drop=0.1, init_blocks=2)
  c.train.steps = 1000000
  c.sample.guidance = 0.7
  c.task.update(num=1000, guidance_weights=(0.0, 0.3, 0.7, 1.0))
  return variants.apply(c, variant, base.VARIANTS, __file__)
