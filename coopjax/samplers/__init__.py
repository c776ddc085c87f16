"""Samplers that know nothing about training: any pure ``log_prob(x, *args)``.

:func:`coopjax.samplers.langevin.langevin` is a jitted ``lax.scan`` Langevin /
MALA chain. This package imports nothing else from coopjax, so it can be
lifted into other JAX code as it is::

    from coopjax.samplers.langevin import langevin
"""
