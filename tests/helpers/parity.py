"""Shared by the parity tests against the authors' code (fixtures under
tests/fixtures/<name>/ written by tools/make_*_fixtures.py)."""

import os

import numpy as np

from helpers import REPO


def close(actual, expected):
  """Equal to 1e-5 relative, or 1e-5 of the largest reference entry."""
  expected = np.asarray(expected)
  np.testing.assert_allclose(np.asarray(actual), expected, rtol=1e-5,
                             atol=1e-5 * np.abs(expected).max())


def load_fixture(name: str) -> dict:
  """``tests/fixtures/<name>/parity.npz`` as a dict of arrays."""
  with np.load(os.path.join(REPO, 'tests', 'fixtures', name,
                            'parity.npz')) as f:
    return dict(f)
