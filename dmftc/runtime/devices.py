"""Placement of the Monte Carlo draws over the local devices (imports only jax and numpy).

The draws m = 0..M-1 of the single-site process are independent given the order parameters,
so the leading axis M of every per-draw array is data-parallel: with the draws split over a
1-D mesh of devices, pointwise updates and causal sums stay local, and an expectation
E[X] = sum_m w_m X_m becomes per-device partial sums plus one all-reduce, which XLA's sharding
propagation inserts by itself once the whitened draws are constrained. Only the summation order
changes (round-off); on one device nothing is emitted at all.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "draws"


@functools.lru_cache(maxsize=None)
def draw_mesh() -> Mesh | None:
    """A 1-D mesh named `draws` over jax.devices(), or None on a single device.

    Cached: the device set of a process is fixed once the backend starts.
    """
    devices = jax.devices()
    return Mesh(np.array(devices), (AXIS,)) if len(devices) > 1 else None


def draw_sharding(ndim: int) -> NamedSharding | None:
    """Split the leading (draw) axis of an ndim array over the mesh; None on one device."""
    mesh = draw_mesh()
    if mesh is None:
        return None
    return NamedSharding(mesh, PartitionSpec(AXIS, *([None] * (ndim - 1))))


def shard_draws(x: jax.Array) -> jax.Array:
    """x with its leading axis (draws) split over all devices; x itself on one device.

    Works inside jit (a sharding constraint) and outside (a placement). M need not divide
    evenly: XLA pads the last shard.
    """
    sharding = draw_sharding(x.ndim)
    if sharding is None:
        return x
    return jax.lax.with_sharding_constraint(x, sharding)
