"""Latent flow prior + top-down generator on the 8x8 scikit-learn digits (CPU).

It keeps small networks (a DCGAN-style generator of width 32, the dense flow
prior), not the authors' (configs/latent_flow_svhn.py), to run on a CPU.

    python -m coopjax.main --config=configs/latent_flow_digits.py --workdir=runs/lf_digits
    python -m coopjax.main --config=configs/latent_flow_digits.py --workdir=runs/lf_digits --mode=reconstruct

Variants (comma-separated): ``:gaussian`` (prior-only ablation, N(0, I)
prior), ``:anomaly`` (digit 9 held out of training; then ``--mode=anomaly``
prints the AUROC), ``:corrupt`` (30% of each training image's pixels missing;
then ``--mode=recover``), e.g. ``--config=configs/latent_flow_digits.py:anomaly,gaussian``.
Other tasks: ``--mode=generate``, ``--mode=inpaint`` (centre 4x4 square).
Every sample report (each 500 steps and at the end) also prints, and writes
to ``metrics.jsonl``, the reconstruction MSE of the test digits, the
inpainting MSE and, for ``:anomaly``, the AUROC; for ``:corrupt``, the
recovery MSE against mean fill.
"""

from coopjax.config import common
from coopjax.config import latent_flow as base
from coopjax.config import variants


def get_config(variant: str = ''):
  """Returns the config; ``variant``: comma-separated 'gaussian', 'anomaly',
  'corrupt'."""
  c = common.digits(base.get_config())
  # Small networks for a CPU: the DCGAN-style generator of width 32 and the
  # dense flow prior, not the authors' (configs/latent_flow_svhn.py).
  # sigma 0.12, not the authors' 0.3: on the 8x8 digits 0.3 leaves g(z)
  # blurred (frechet_digits 47.7 at step 500 against 16.8; bench/RESULTS.md).
  c.model.update(latent_dim=16, generator='small', gen_width=32, gen_num_up=2,
                 flow_net='dense', sigma=0.12)
  for name in ('gen', 'prior'):
    c.optim[name].update(lr=1e-3, decay_rate=1.0, decay_steps=0)
  c.train.update(steps=1000, log_every=100, ckpt_every=500,
                 sample_every=500, ema=0.999)
  c.sample.num = 500  # frechet_digits over 500 samples, as the other digits configs
  c.task.update(num=297, recon_steps=300, chunk=500)
  variants.apply(c, variant, {**base.VARIANTS, 'anomaly': base.anomaly},
                 __file__, combine=True)
  c.sample.tasks = ('reconstruct', 'inpaint')
  if c.data.holdout_class >= 0:
    c.sample.tasks += ('anomaly',)
  if c.data.missing_fraction > 0:
    c.sample.tasks = ('recover',)
  return c
