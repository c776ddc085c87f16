"""coopjax: energy-based models learned cooperatively with amortised samplers, in JAX."""
