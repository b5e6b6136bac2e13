"""What solution.npz and simulation.npz hold besides the arrays: `t`, `axes`, `meta`; short reprs.

Shared by `dmftc.program.Solution` and `dmftc.simulate.Simulation` (no jax import here). The
layout is documented in README.md, "Output files".
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np

#: the entries every .npz holds besides the arrays
EXTRA = ("t", "axes", "meta")
#: repr lists at most this many arrays
_SHOWN = 16


def versions() -> dict[str, str]:
    """dmftc, jax and numpy versions ("not installed" where absent)."""
    from . import __version__

    out = {"dmftc": __version__, "numpy": np.__version__}
    try:
        from importlib.metadata import PackageNotFoundError, version
        out["jax"] = version("jax")
    except (ImportError, PackageNotFoundError):  # pragma: no cover - jax is a dependency
        out["jax"] = "not installed"
    return out


def solution_axes(arrays: Mapping[str, np.ndarray], method: str | None = None) -> dict[str, list[str]]:
    """Axis names of a DMFT solve's arrays, from their shapes; 'unknown' where a layout is ambiguous.

    t: time, 0..T (after t updates); t2 a second time; sample: the input mu (0..P-1); site and site2:
    the kernels' site (the sample mu, or for token inputs the position alpha = mu * S + s); head: a
    kept attention head. T + 1 comes from `loss`, P from `f`, the site count from the two-time kernels.
    With method "closed_form" (the lazy limit) every other array is an equal-time (site, site2) kernel.
    """
    T1 = int(np.shape(arrays["loss"])[0]) if "loss" in arrays else None
    P = int(np.shape(arrays["f"])[-1]) if "f" in arrays else None
    M = next((s[1] for s in map(np.shape, arrays.values())
              if len(s) == 4 and s[0] == s[2] == T1 and s[1] == s[3]), P)
    out = {}
    for name, a in arrays.items():
        s = tuple(np.shape(a))
        if name == "loss":
            rules = [((T1,), ("t",))]
        elif name in ("f", "f_var", "Delta"):
            rules = [((T1, P), ("t", "sample"))]
        elif name.startswith("logits"):
            rules = [((T1, None, M, M), ("t", "head", "site", "site2"))]
        elif method == "closed_form":
            rules = [((M, M), ("site", "site2"))]
        else:
            rules = [((T1, M, T1, M), ("t", "site", "t2", "site2")), ((T1, M, M), ("t", "site", "site2")),
                     ((M, M), ("site", "site2"))]
            rules.append(((T1, P), ("t", "sample")) if M == P else ((T1, M), ("t", "site")))
        fits = {names for shape, names in rules if _fits(s, shape)}
        out[name] = list(fits.pop()) if len(fits) == 1 else ["unknown"] * len(s)
    return out


def simulation_axes(arrays: Mapping[str, np.ndarray]) -> dict[str, list[str]]:
    """Axis names of an ensemble's arrays (see `dmftc.simulate.Simulation`); seed: the network."""
    known = {"loss": ("seed", "t"), "f": ("seed", "t", "sample"), "f0": ("seed", "sample")}
    out = {}
    for name, a in arrays.items():
        n = np.ndim(a)
        if name in known:
            names = known[name]
        elif name.startswith("displacement:"):
            names = ("seed", "t")
        elif name.startswith("logits"):
            names = ("seed", "t", "block", "head", "sample", "token", "token2")
        elif name.startswith(("Phi", "G")):
            names = {5: ("seed", "t", "site", "t2", "site2"), 4: ("seed", "t", "site", "site2")}.get(n, ())
        else:
            names = ()
        out[name] = list(names) if len(names) == n else ["unknown"] * n
    return out


def npz_entries(arrays: Mapping[str, np.ndarray], steps: int, axes: Mapping[str, list[str]],
                meta: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The arrays plus t (0..T), axes and meta (JSON text, 0-d unicode arrays: no pickle needed)."""
    clash = set(EXTRA) & set(arrays)
    if clash:  # pragma: no cover - no solver or simulation names an array so
        raise ValueError(f"array names {sorted(clash)} are reserved for the file's layout")
    return {**arrays, "t": np.arange(steps + 1), "axes": np.array(json.dumps(axes, sort_keys=True)),
            "meta": np.array(json.dumps(meta, sort_keys=True, default=str))}


def describe(kind: str, head: str, arrays: Mapping[str, np.ndarray]) -> str:
    """One line: kind(head; name(shape), ...), never the values; at most _SHOWN arrays are listed."""
    names = [f"{k}{tuple(np.shape(v))}" for k, v in arrays.items()]
    more = f", ... {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return f"{kind}({head}; {', '.join(names[:_SHOWN])}{more})"


def _fits(shape: tuple, pattern: tuple) -> bool:
    return len(shape) == len(pattern) and all(p is None or p == s for s, p in zip(shape, pattern))
