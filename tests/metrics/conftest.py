"""Fixtures of the metrics tests."""

import numpy as np
import pytest

from coopjax.metrics import inception


@pytest.fixture(scope='session')
def weights_file(tmp_path_factory):
  path = tmp_path_factory.mktemp('inception') / 'inception_fid.npz'
  np.savez(path, **inception.flatten(inception.random_weights(seed=0)))
  return str(path)
