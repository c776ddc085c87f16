"""The one parser of config variants (``--config=configs/<file>.py:<variant>``).

A config file ends with::

    return variants.apply(c, variant, {'': None, 'drl': cdrl.drl}, __file__)

``known`` maps each variant name to a function that edits the config (None:
no change). With ``combine=True`` the variant is comma-separated names
applied in order (``:anomaly,gaussian``), and ``''`` is always allowed.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping, Optional

import ml_collections

Edit = Optional[Callable[[ml_collections.ConfigDict], object]]


def names(known: Mapping[str, Edit], combine: bool = False) -> str:
  """``"'', 'large', 'drl'"``: the known variants for messages."""
  keys = ([''] if combine and '' not in known else []) + list(known)
  return ', '.join(repr(k) for k in keys)


def apply(c: ml_collections.ConfigDict, variant: str,
          known: Mapping[str, Edit], file: str,
          combine: bool = False) -> ml_collections.ConfigDict:
  """Applies ``variant`` of the config file ``file`` to ``c``; returns ``c``.

  Raises:
    ValueError: an unknown variant (one line naming the file and the known
      variants).
  """
  variant = variant or ''
  tokens = [t for t in variant.split(',') if t] if combine else [variant]
  for token in tokens:
    if token not in known:
      raise ValueError(
          f'Unknown variant {token!r} of configs/{os.path.basename(file)}; '
          f'known: {names(known, combine)}'
          f'{" (comma-separated)" if combine else ""}.')
  for token in tokens:
    if known[token] is not None:
      known[token](c)
  return c
