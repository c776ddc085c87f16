"""Importers of other frameworks' weights into coopjax.

- :mod:`~coopjax.convert.torch_file`: reads PyTorch checkpoint files into
  numpy arrays without executing pickled code (torch is optional).
- :mod:`~coopjax.convert.coopflow`, :mod:`~coopjax.convert.latent_flow`: the
  CoopFlow and latent-flow-prior authors' checkpoints into a coopjax workdir
  (``python -m coopjax.convert.coopflow --help``); shared helpers in
  :mod:`~coopjax.convert.common`.
"""
