"""Evaluation metrics.

- :mod:`~coopjax.metrics.density`: 2-D total variation (samples and
  densities on a grid) and AUROC;
- :mod:`~coopjax.metrics.frechet`: Gaussian feature statistics and the
  Frechet distance;
- :mod:`~coopjax.metrics.inception`: the FID Inception-v3 network, its
  weights and the Inception Score;
- :mod:`~coopjax.metrics.fid`: ``fid_and_is`` against an image dataset, with
  cached real statistics;
- :mod:`~coopjax.metrics.digits_classifier`: ``digits_frechet`` for the
  embedded 8x8 digits.

The public functions are re-exported here (``metrics.sample_tv``,
``metrics.fid_and_is``, ...). Nothing here imports TensorFlow.
"""

from coopjax.metrics.density import auroc
from coopjax.metrics.density import density_tv
from coopjax.metrics.density import fine_grid
from coopjax.metrics.density import grid_probs
from coopjax.metrics.density import histogram_probs
from coopjax.metrics.density import sample_tv
from coopjax.metrics.density import tv_distance
from coopjax.metrics.digits_classifier import digits_frechet
from coopjax.metrics.fid import fid_and_is
from coopjax.metrics.fid import prepare_samples
from coopjax.metrics.fid import weights_hash
from coopjax.metrics.frechet import frechet_distance
from coopjax.metrics.frechet import gaussian_stats
from coopjax.metrics.frechet import GaussianStats
from coopjax.metrics.inception import inception_score
