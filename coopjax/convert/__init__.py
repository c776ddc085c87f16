"""Importers of other frameworks' weights into coopjax.

- :mod:`~coopjax.convert.torch_file`: reads PyTorch checkpoint files into
  numpy arrays without executing pickled code (torch is optional).
"""
