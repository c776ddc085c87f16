"""The config schema: every field the library reads, declared once with its default.

- :mod:`coopjax.config.common`: sections all algorithms share (``seed``,
  ``data``, ``train``, ``sample``, ``eval``, optimisers) and the digits data;
- :mod:`coopjax.config.cdrl`, :mod:`coopjax.config.coopflow`,
  :mod:`coopjax.config.latent_flow`: one base config per algorithm
  (``get_config()``) and the functions that derive the other settings
  (``cdrl.drl``, ``coopflow.pretrain``, ...);
- :mod:`coopjax.config.variants`: the one parser of ``:variant``.

The files in ``configs/`` start from a base config::

    from coopjax.config import cdrl as base
    from coopjax.config import variants

    def get_config(variant: str = ''):
      c = base.get_config()
      c.data.update(name='svhn_cropped', random_flip=False)
      return variants.apply(c, variant, base.VARIANTS, __file__)

This package imports only ``ml_collections``.
"""

from coopjax.config import cdrl, common, coopflow, latent_flow, variants

BASES = {'cdrl': cdrl, 'drl': cdrl, 'coopflow': coopflow,
         'latent_flow': latent_flow}



def tasks(algorithm: str, kind: str) -> tuple:
  """The ``--mode`` tasks (beyond train, sample, eval) of ``algorithm`` on
  data of ``kind`` ('images' or 'points'); () for an unknown algorithm."""
  base = BASES.get(algorithm)
  if base is None:
    return ()
  return tuple(base.TASKS if kind == 'images' else base.TASKS_ON_POINTS)


__all__ = ['BASES', 'tasks', 'cdrl', 'common', 'coopflow', 'latent_flow', 'variants']
