"""The runtime every algorithm shares.

- :mod:`~coopjax.trainer.protocol`: what the trainer needs of an algorithm;
- :mod:`~coopjax.trainer.loop`: ``train_and_evaluate``, ``sample``,
  ``evaluate``, ``run_task`` for a workdir;
- :mod:`~coopjax.trainer.parallel`: the mesh and the data-parallel train step;
- :mod:`~coopjax.trainer.state`: train state, optimizers, EMA;
- :mod:`~coopjax.trainer.checkpoint`, :mod:`~coopjax.trainer.workdir`,
  :mod:`~coopjax.trainer.preemption`, :mod:`~coopjax.trainer.nonfinite`,
  :mod:`~coopjax.trainer.distributed`: checkpoints, workdir guards, stop
  signals, the NaN policy, the multi-host start;
- :mod:`~coopjax.trainer.metric_writer`: ``metrics.jsonl``, TensorBoard and the
  progress line;
- :mod:`~coopjax.trainer.reports`, :mod:`~coopjax.trainer.tasks`: sample
  pictures and quality figures, and the helpers the algorithms' tasks share.

Nothing is imported here, so importing one module does not import the rest.
"""
