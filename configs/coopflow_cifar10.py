"""CoopFlow on CIFAR-10 with the reference settings where coopjax has them
(docs/algorithms.md, sections 3 and 5.2: a Glow flow stands in for Flow++).

    python -m coopjax.main --config=configs/coopflow_cifar10.py --workdir=runs/cf_cifar10

CoopFlow(pre): pretrain the flow by maximum likelihood on the (dequantised)
data, then learn cooperatively from it, the flow frozen for
``optim.flow.freeze_steps`` updates::

    python -m coopjax.main --config=configs/coopflow_cifar10.py:pretrain --workdir=runs/cf_cifar10_flow
    python -m coopjax.main --config=configs/coopflow_cifar10.py:pre --workdir=runs/cf_cifar10_pre \\
        --config.coopflow.flow_init=runs/cf_cifar10_flow

Tasks on a trained run: ``--mode=sample`` (synthesis), ``--mode=reconstruct``,
``--mode=interpolate``, ``--mode=inpaint``. The data must be prepared offline
in ``--config.data.tfds_dir`` (see README, "Image data"); FID needs
``--config.eval.inception_path``. Shrink for a laptop with e.g.
``--config.model.width=32 --config.model.flow_hidden=32
--config.data.batch_size=16``.
"""

from coopjax.config import coopflow as base
from coopjax.config import variants


def get_config(variant: str = ''):
  """Returns the config; ``variant`` is '', 'pretrain' or 'pre'."""
  return variants.apply(base.get_config(), variant, base.VARIANTS, __file__)
