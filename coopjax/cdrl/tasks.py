"""CDRL's downstream tasks as CLI modes: ``--mode=guided|compose|inpaint|ood|fewer_steps``.

Each task is a function ``(algo, state, dataset, prefix) -> {figure: value}`` that
samples with the EMA parameters of a trained model, writes
``<prefix>.npz`` / ``<prefix>.png`` and returns its figures. The pure
mathematics is in :mod:`coopjax.cdrl.sampling` (``sample`` with ``cond``
and ``inpaint``), :func:`coopjax.cdrl.model.ood_score` and
:mod:`coopjax.cdrl.conditioning`; settings come from
``config.task``:

- ``guidance_weights``: the weights w of ``guided`` (one grid row per class);
- ``concepts``: ``((attribute, value), ...)`` composed by ``compose`` at
  ``compose_weight``;
- ``num``: samples / test images per setting;
- ``mask``: ``'square'`` (the centre half) or ``'free'`` (random strokes) for
  ``inpaint``;
- ``ood_data``: a dataset name to score against the test split, or
  ``'noise'`` (uniform noise images);
- ``steps``: the K' values of ``fewer_steps``.
"""

from __future__ import annotations

import math
import os
from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np

from coopjax import data, metrics, plotting
from coopjax.cdrl import conditioning
from coopjax.cdrl.model import ood_score
from coopjax.cdrl.sampling import sample
from coopjax.data import masks
from coopjax.trainer import reports
from coopjax.trainer.tasks import bind, save_side_by_side, task_key


def _sample_fn(algo, num: int, n_steps=None, with_cond=False,
               with_inpaint=False):
  """A jitted ``(state, key, cond, inpaint) -> x`` (cached on the algorithm)."""

  def run(state, key, cond, inpaint):
    x, _ = sample(algo.model, algo.ebm_vars(state), state.ema.get('init'),
                  key, num, algo.example_shape, n_steps, cond=cond,
                  inpaint=inpaint)
    return x

  return algo.jit(('task_sample', num, n_steps, with_cond, with_inpaint), run)


def _need_classes(algo, what: str) -> None:
  if not algo.model.num_classes:
    raise ValueError(f'--mode={what} needs a class-conditional model '
                     '(config.model.num_classes > 0) trained with labels.')


def _label_log_prob_fn(algo):
  """A jitted ``(state, x, labels) -> [B]`` ``log p_theta(label | x)`` under
  the model's own classifier, ``softmax_c f_theta(x, logsnr_0 | c)`` over the
  classes (model labels ``labels``, 1..k)."""
  k = algo.model.num_classes

  def run(state, x, labels):
    f = jnp.stack([ood_score(algo.model, algo.ebm_vars(state), x,
                             conditioning.conditional(
                                 jnp.full((x.shape[0],), c, jnp.int32)))
                   for c in range(1, k + 1)], axis=-1)
    log_p = f - jax.scipy.special.logsumexp(f, axis=-1, keepdims=True)
    return jnp.take_along_axis(log_p, (labels - 1)[:, None], axis=-1)[:, 0]

  return algo.jit('label_log_prob', run)


def guided(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """Class-conditional samples at each guidance weight; one grid per weight.

  Figures per weight w: the sample quality (:func:`reports.quality`) and
  ``label_log_prob_w<w>``, the mean ``log p_theta(label | x)`` of the samples
  under the model's own classifier (``softmax_c f_theta(x, logsnr_0 | c)``),
  which guidance is meant to raise: sampling at weight w targets
  ``p(x | c) p(c | x)^w``.
  """
  _need_classes(algo, 'guided')
  cfg, k = algo.config.task, algo.model.num_classes
  per_class = max(1, cfg.num // k)
  labels = jnp.repeat(jnp.arange(k) + 1, per_class)
  fn = _sample_fn(algo, len(labels), with_cond=True)
  out, grids = {}, {}
  for w in cfg.guidance_weights:
    x = np.asarray(fn(state, task_key(algo, state, 1),
                      conditioning.guided(labels, float(w)), None))
    grids[f'w{w:g}'] = x
    out[f'label_log_prob_w{w:g}'] = float(np.mean(
        _label_log_prob_fn(algo)(state, jnp.asarray(x), labels)))
    plotting.save_labelled_grid(
        f'{prefix}_w{w:g}.png', x, ncol=per_class, zoom=reports.zoom_for(x),
        title=f'{os.path.basename(prefix)}: guidance weight w={w:g}',
        row_labels=[f'class {c}' for c in range(k)])
    for name, v in reports.quality(algo.config, dataset, x, prefix).items():
      out[f'{name}_w{w:g}'] = v
  np.savez(prefix + '.npz', labels=np.asarray(labels) - 1, **grids)
  return out


def compose(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """Samples composing ``config.task.concepts`` at ``compose_weight``."""
  _need_classes(algo, 'compose')
  cfg = algo.config.task
  if not cfg.concepts:
    raise ValueError('--mode=compose needs config.task.concepts, e.g. '
                     '((0, 1), (1, 1)) for attribute 0 = 1 and attribute 1 = 1.')
  concepts = [conditioning.concept(a, v) for a, v in cfg.concepts]
  if max(concepts) > algo.model.num_classes:
    raise ValueError(f'config.task.concepts={cfg.concepts} names an attribute '
                     f'the model was not trained on.')
  labels = jnp.broadcast_to(jnp.asarray(concepts)[:, None],
                            (len(concepts), cfg.num))
  cond = conditioning.composed(labels, float(cfg.compose_weight))
  x = np.asarray(_sample_fn(algo, cfg.num, with_cond=True)(
      state, task_key(algo, state, 2), cond, None))
  np.savez(prefix + '.npz', x=x, concepts=np.asarray(cfg.concepts))
  plotting.save_labelled_grid(
      prefix + '.png', x, ncol=math.ceil(math.sqrt(len(x))),
      zoom=reports.zoom_for(x),
      title=f'{os.path.basename(prefix)}: concepts {list(cfg.concepts)}, '
            f'weight {cfg.compose_weight:g}')
  return {'num': float(len(x))}


def inpaint(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """Fills masked test images; known pixels are kept exactly."""
  cfg = algo.config.task
  obs = dataset.test_batch(cfg.num)['x']
  mask = masks.make(cfg.mask, obs.shape, algo.config.seed)
  x = np.asarray(_sample_fn(algo, len(obs), with_inpaint=True)(
      state, task_key(algo, state, 3), None, (jnp.asarray(mask), obs)))
  np.savez(prefix + '.npz', x=x, observed=obs, mask=mask)
  save_side_by_side(prefix + '.png', (masks.shown(obs, mask), x, obs),
                    titles=('observed', 'inpainted', 'true'))
  return masks.fill_figures(x, obs, mask)


def _ood_score_fn(algo):
  return algo.jit('ood_score', lambda state, x: ood_score(
      algo.model, algo.ebm_vars(state), x))


def _ood_data(algo, dataset, num: int) -> np.ndarray:
  name = algo.config.task.ood_data
  shape = (num,) + tuple(dataset.example_shape)
  if name == 'noise':
    return np.random.default_rng(algo.config.seed).uniform(
        -1, 1, shape).astype(np.float32)
  cfg = algo.config.data.copy_and_resolve_references()
  with cfg.unlocked():
    cfg.name = name
  other = data.load(cfg, algo.config.seed)
  x = other.test_batch(num)['x']
  if x.shape[1:] != shape[1:]:
    raise ValueError(f'OOD dataset {name!r} has images {x.shape[1:]}, the '
                     f'model {shape[1:]}; pick data of the same shape.')
  return x


def ood(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """AUROC of ``f_theta(x, logsnr_0)`` between the test split and ``ood_data``."""
  num = algo.config.task.num
  x_in = dataset.test_batch(num)['x']
  x_out = _ood_data(algo, dataset, len(x_in))
  score = _ood_score_fn(algo)
  s_in = np.asarray(score(state, x_in))
  s_out = np.asarray(score(state, x_out))
  np.savez(prefix + '.npz', scores_in=s_in, scores_out=s_out)
  return {'auroc': metrics.auroc(s_in, s_out),
          'score_in_mean': float(s_in.mean()),
          'score_out_mean': float(s_out.mean())}


def fewer_steps(algo, state, dataset, prefix: str) -> Dict[str, float]:
  """Samples with K' < K steps (step size scaled by sqrt(K / K')), a figure each."""
  cfg = algo.config.task
  out = {}
  for k in cfg.steps:
    x = np.asarray(_sample_fn(algo, cfg.num, n_steps=int(k))(
        state, task_key(algo, state, 4), algo.default_condition(cfg.num), None))
    figures = reports.quality(algo.config, dataset, x, prefix)
    shown = ', '.join(f'{n}={v:.4g}' for n, v in figures.items())
    plotting.save_labelled_grid(
        f'{prefix}_K{k}.png', x[:100], ncol=10, zoom=reports.zoom_for(x),
        title=f'{os.path.basename(prefix)}: K={k} Langevin steps per level'
              + (f', {shown}' if shown else ''))
    out.update({f'{name}_K{k}': v for name, v in figures.items()})
    if not figures:
      out[f'num_K{k}'] = float(len(x))
  return out


def tasks_for(algo) -> Dict:
  """The CLI modes of a CDRL algorithm, bound to it (images only)."""
  if algo.kind != 'images':
    return {}
  return bind(algo, (('guided', guided), ('compose', compose),
                     ('inpaint', inpaint), ('ood', ood),
                     ('fewer_steps', fewer_steps)))
