"""Class conditioning for CDRL: label dropout, guidance and composition.

Labels follow the paper's convention: index 0 is the null (unconditional)
class and class ``c`` is fed as ``c + 1``. Every conditional quantity coopjax
evaluates is a weighted sum over a few conditions,

    f(y) = sum_j coefs[j] f(y | labels[j]),     g(x) = sum_j coefs[j] g(x | labels[j]),

which a :class:`Condition` holds. Plain conditional sampling is one term with
weight 1; classifier-free guidance at weight w is ``(1 + w) f(y|c) - w
f(y|null)``; the composition of concepts ``c_1..c_n`` is ``f(y|null) + sum_i
(1 + w) [f(y|c_i) - f(y|null)]`` for the EBM, with its own (non-extrapolating)
weights for a conditional initializer (:func:`composed`).

Binary attributes (CelebA) become concepts too: attribute ``i`` with value
``v`` in {0, 1} is label ``1 + 2 i + v`` (``2 n`` concepts plus null).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from coopjax.rng import split_each

NULL = 0


class Condition(NamedTuple):
  """Weighted conditions.

  Attributes:
    labels: ``[n_terms, B]`` int32 model labels (0 = null).
    coefs: ``[n_terms]`` float32 weights of the EBM terms.
    init_coefs: ``[n_terms]`` float32 weights of a conditional initializer's
      means, or None for ``coefs``. They sum to 1, so the proposal stays a
      guided (not extrapolated) mean.
  """
  labels: jax.Array
  coefs: jax.Array
  init_coefs: Optional[jax.Array] = None


def model_label(label: jax.Array) -> jax.Array:
  """Dataset class ``c`` -> model label ``c + 1`` (0 is reserved for null)."""
  return jnp.asarray(label, jnp.int32) + 1


def concept(attribute: int, value: int) -> int:
  """Model label of binary attribute ``attribute`` having ``value``."""
  return 1 + 2 * int(attribute) + int(value)


def conditional(labels: jax.Array) -> Condition:
  """Plain conditional: one term ``f(y | labels)`` (model labels, ``[B]``)."""
  labels = jnp.asarray(labels, jnp.int32)
  return Condition(labels[None], jnp.ones((1,), jnp.float32))


def guided(labels: jax.Array, w: float) -> Condition:
  """Classifier-free guidance ``(1 + w) f(y|c) - w f(y|null)`` for model labels ``[B]``."""
  labels = jnp.asarray(labels, jnp.int32)
  return Condition(jnp.stack([labels, jnp.full_like(labels, NULL)]),
                   jnp.asarray([1.0 + w, -w], jnp.float32))


def composed(labels: jax.Array, w: float) -> Condition:
  """Composition ``f(y|null) + sum_i (1 + w)[f(y|c_i) - f(y|null)]``.

  The EBM terms compose as above. A conditional initializer's mean is the
  average of the concepts' guided means, ``(1/n) sum_i [(1 + w) g(x|c_i) - w
  g(x|null)]`` (the EBM's weights would extrapolate it: ``-5 g(null) + 2
  sum_i g(c_i)`` for 3 concepts at w = 1); an unconditional initializer (the
  paper's composition set-up) ignores both.

  Args:
    labels: ``[n, B]`` model labels of the ``n`` concepts per example.
    w: guidance weight of every concept.
  """
  labels = jnp.asarray(labels, jnp.int32)
  n = labels.shape[0]
  coefs = jnp.concatenate([jnp.asarray([1.0 - n * (1.0 + w)]),
                           jnp.full((n,), 1.0 + w)]).astype(jnp.float32)
  init_coefs = jnp.concatenate([jnp.asarray([-w]), jnp.full(
      (n,), (1.0 + w) / n)]).astype(jnp.float32)
  return Condition(jnp.concatenate([jnp.zeros_like(labels[:1]), labels]),
                   coefs, init_coefs)


def training_labels(labels: jax.Array, keys: jax.Array,
                    drop_prob: float) -> jax.Array:
  """Model labels for a training batch, each dropped to null with ``drop_prob``.

  Args:
    labels: ``[B]`` dataset classes, or ``[B, n]`` binary attributes (one
      attribute per example is picked at random and becomes its concept).
    keys: ``[B]`` per-example keys.
    drop_prob: probability of replacing the label by the null class.

  Returns:
    ``[B]`` int32 model labels.
  """
  k_drop, k_pick = split_each(keys, 2)
  if labels.ndim == 2:
    pick = jax.vmap(lambda k: jax.random.randint(k, (), 0, labels.shape[1]))(
        k_pick)
    value = jnp.take_along_axis(labels, pick[:, None], axis=1)[:, 0]
    lab = 1 + 2 * pick + value.astype(jnp.int32)
  else:
    lab = model_label(labels)
  drop = jax.vmap(lambda k: jax.random.uniform(k))(k_drop) < drop_prob
  return jnp.where(drop, NULL, lab).astype(jnp.int32)
