"""CoopFlow on CIFAR-10 with the authors' networks and settings: EBM_res
(17.1M parameters), Flow++ (28.8M), batch 28, K = 30 Langevin steps of 0.03
(0.04 for samples), flow weight decay 5e-5 (docs/algorithms.md, section 3,
lists what still departs from their code).

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
``--config.eval.inception_path``. The lighter Glow flow:
``--config.model.flow=glow --config.model.flow_hidden=128
--config.model.dequant_bins=256``; the authors' released checkpoints:
``python -m coopjax.convert.coopflow`` (its docstring).
"""

from coopjax.config import coopflow as base
from coopjax.config import variants


def get_config(variant: str = ''):
  """Returns the config; ``variant`` is '', 'pretrain' or 'pre'."""
  return variants.apply(base.get_config(), variant, base.VARIANTS, __file__)
