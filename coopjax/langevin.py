"""The Langevin / MALA chain, re-exported from :mod:`coopjax.samplers.langevin`.

``from coopjax.samplers.langevin import langevin`` keeps working; the implementation
lives in :mod:`coopjax.samplers`.
"""

from coopjax.samplers.langevin import LangevinInfo, langevin, split_keys  # pylint: disable=unused-import
