"""The Langevin / MALA chain, re-exported from :mod:`coopjax.samplers.langevin`.

``from coopjax.langevin import langevin`` keeps working; the implementation,
and the one-step kernels it is made of, live in :mod:`coopjax.samplers`.
"""

from coopjax.samplers.langevin import LangevinInfo, langevin, split_keys  # pylint: disable=unused-import
