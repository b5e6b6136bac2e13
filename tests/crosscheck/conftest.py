"""Synthetic finite-size ensembles with a known bias and noise (docs/theory.md#finite-size).

A network of size n returns  ref + offset + c * g / n + sigma * z / sqrt(n):
a bias c g / n of the seed average (rate n^-1), fluctuations sigma / sqrt(n)
of single networks (rate n^-1/2), and optionally a constant offset, which is
what a wrong DMFT looks like. Loss-like curves get noise correlated in time
(a normalised random walk, as real training curves have); f-like arrays get
independent noise per entry.
"""

from __future__ import annotations

import numpy as np
import pytest

T1, P = 51, 8  # steps + 1, samples
SIZES = (128, 256, 512, 1024, 2048)


def reference() -> dict[str, np.ndarray]:
    t = np.arange(T1)
    return {"loss": 0.5 * np.exp(-t / 10) + 0.02, "f": np.outer(1 - np.exp(-t / 10), np.linspace(-1, 1, P))}


def ensemble(rng, n, seeds, *, c=30.0, sigma=1.0, offset=0.0, ref=None):
    """One size's ensemble {"loss": (seeds, T1), "f": (seeds, T1, P)}."""
    ref = reference() if ref is None else ref
    walk = np.cumsum(rng.standard_normal((seeds, T1)), axis=1) / np.sqrt(np.arange(1, T1 + 1))
    g_loss = 1.0 + np.arange(T1) / T1
    g_f = np.cos(np.arange(T1) / 7)[:, None] * np.ones(P)
    return {
        "loss": ref["loss"] + offset + c * g_loss / n + sigma * walk / np.sqrt(n),
        "f": ref["f"] + offset + c * g_f / n + sigma * rng.standard_normal((seeds, T1, P)) / np.sqrt(n),
    }


def ensembles(seed, *, sizes=SIZES, seeds=32, **kw):
    """{n: ensemble} for every size, from one generator."""
    rng = np.random.default_rng(seed)
    return {n: ensemble(rng, n, seeds, **kw) for n in sizes}


@pytest.fixture
def synthetic():
    """The generators above, for tests that need them."""

    class Synthetic:
        SIZES = SIZES
        reference = staticmethod(reference)
        ensemble = staticmethod(ensemble)
        ensembles = staticmethod(ensembles)

    return Synthetic
