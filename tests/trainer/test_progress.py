"""coopjax.trainer.metric_writer.Progress: rate and ETA from recent steps."""

import math

from coopjax.trainer.metric_writer import Progress


class Clock:
  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


def test_rate_leaves_out_compilation_and_reports_and_follows_recent_steps():
  clock = Clock()
  progress = Progress(total=1000, start=0, window=2, clock=clock)
  clock.now += 60.0  # the first step compiles for a minute
  progress.started(1)
  assert math.isnan(progress.eta(1))  # no rate yet
  assert 'ETA ?' in progress.line(1, {})
  clock.now += 10.0  # 99 steps at 9.9 steps/s
  assert progress.line(100, {'loss': 0.5}).startswith('step 100/1000 loss=0.5')
  assert abs(progress.rate() - 9.9) < 1e-9
  clock.now += 20.0  # a 20 s sample report, left out of the rate ...
  progress.exclude(20.0)
  clock.now += 10.0
  progress.line(200, {})
  assert abs(progress.rate() - 199 / 20) < 1e-9
  # ... and added back to the ETA per step: 20 s over 199 timed steps.
  expected = 800 * (20 / 199 + 20 / 199)
  assert abs(progress.eta(200) - expected) < 1e-6
  # The window forgets old speeds: two intervals at 100 steps/s later.
  for step in (300, 400, 500):
    clock.now += 1.0
    line = progress.line(step, {})
  assert abs(progress.rate() - 100.0) < 1e-9
  assert '100.00 steps/s' in line
