"""Class-conditional CDRL on ImageNet 32x32 with classifier-free guidance.

    python -m coopjax.main --config=configs/imagenet32_cond.py --workdir=runs/in32

Labels are embedded and added to the noise-level embedding; each label is
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
  c.model.update(num_classes=1000, label_drop=0.1)
  c.sample.guidance = 0.7
  c.task.update(num=1000, guidance_weights=(0.0, 0.3, 0.7, 1.0))
  return variants.apply(c, variant, base.VARIANTS, __file__)
