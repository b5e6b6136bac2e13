"""What solution.npz and simulation.npz hold besides the arrays: `t`, `axes`, `meta`; short reprs; the
labelled arrays (xarray) and the step plots of `to_xarray` and `plot`.

Shared by `dmftc.program.Solution` and `dmftc.simulate.Simulation` (no jax import here; xarray and
matplotlib only when asked for). The layout is documented in README.md, "Output files", and
docs/reading-output.md, "In Python: to_xarray and plot".
"""

from __future__ import annotations

import json
from numbers import Number
from typing import Any, Mapping

import numpy as np


#: the entries every .npz holds besides the arrays
EXTRA = ("t", "axes", "meta")
#: repr lists at most this many arrays
_SHOWN = 16
#: the losses, each one value per step: training, minibatch and held-out (docs/theory.md#training-setups)
LOSSES = ("loss", "loss_batch", "loss_test")
#: the losses besides the training loss in words (`dmftc.crosscheck.plots.quantity_words` has the rest)
LOSS_WORDS = {"loss_batch": "batch loss", "loss_test": "held-out loss"}
#: the xarray dimension of each axis name of `solution_axes` and `simulation_axes`: the printed
#: equations' indices (docs/symbols.md), mu and nu for the sites, s for the second time
DIMS = {"site": "mu", "site2": "nu", "t2": "s"}


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
        if name in LOSSES:
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
        elif name in LOSSES:
            names = ("seed", "t")
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


def simulation_words(name: str) -> str | None:
    """A simulation's own array in words (weight displacements, the stacked attention logits); None for the
    loss, f and the kernels, whose names and words are the DMFT's (`crosscheck.plots.quantity_words`)."""
    if name.startswith("displacement:"):
        return f"relative displacement ||W(t) − W(0)|| / ||W(0)|| of {name.split(':', 1)[1]}"
    return "attention logits A" if name == "logits" else None


def dataset(arrays: Mapping[str, np.ndarray], axes: Mapping[str, list[str]], attrs: Mapping[str, Any]):
    """An xarray.Dataset of `arrays`, each on the dimensions its `axes` name (renamed by `DIMS`).

    Every named dimension has the coordinates 0, 1, ... (t and s: the step; seed: the network of the
    ensemble). A dimension whose length differs from an earlier array's is suffixed with the array's
    name ("mu_logits1"); an unknown axis becomes "<name>_axis<i>", without coordinates. `attrs` are
    stored through `netcdf_attrs`, so that `to_netcdf` can write them.
    """
    import xarray as xr

    lengths, named, variables = {}, set(), {}
    for name, a in arrays.items():
        a = np.asarray(a)
        dims = []
        for i, (axis, n) in enumerate(zip(axes[name], a.shape)):
            dim = f"{name}_axis{i}" if axis == "unknown" else DIMS.get(axis, axis)
            if lengths.get(dim, n) != n:
                dim = f"{dim}_{name}"
            lengths[dim] = n
            if axis != "unknown":
                named.add(dim)
            dims.append(dim)
        variables[name] = (dims, a)
    coords = {d: np.arange(n) for d, n in lengths.items() if d in named}
    return xr.Dataset(variables, coords=coords, attrs=netcdf_attrs(attrs))


def netcdf_attrs(meta: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`meta` as attributes a netCDF file can hold: nested mappings flattened to "outer_inner" keys
    (sizes_N, versions_dmftc), booleans as 0 or 1, numbers and strings as they are, lists of numbers
    kept, anything else as JSON text; None left out."""
    out: dict[str, Any] = {}
    for key, value in meta.items():
        key = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(netcdf_attrs(value, f"{key}_"))
        elif value is None:
            continue
        elif isinstance(value, (bool, np.bool_)):
            out[key] = int(value)
        elif isinstance(value, (str, Number, np.number)):
            out[key] = value.item() if isinstance(value, np.generic) else value
        elif isinstance(value, (list, tuple)) and value and all(
                isinstance(v, (Number, np.number)) and not isinstance(v, (bool, np.bool_)) for v in value):
            out[key] = [v.item() if isinstance(v, np.generic) else v for v in value]
        else:
            out[key] = json.dumps(value, sort_keys=True, default=str)
    return out


def curve_problem(ds, name: str, where: Mapping[str, int], keep: tuple[str, ...] = ()) -> str:
    """Why the array `name` of a `dataset` at the indices `where` (dimension -> index) is not one value per
    step t besides the dimensions `keep` (e.g. seed), in words; "" when it is."""
    if name not in ds.data_vars:
        return f"no array {name!r}; the arrays: {', '.join(map(str, ds.data_vars))}"
    dims = ds[name].dims
    unknown = sorted(set(where) - set(dims))
    if unknown:
        return f"{name!r} has no dimension {', '.join(unknown)}; its dimensions: {', '.join(dims)}"
    left = [d for d in dims if d not in keep and d not in where]
    if left == ["t"]:
        return ""
    hint = ", ".join(f"{d}=0" for d in left if d != "t") if "t" in left else ""
    return (f"plot draws one value per step t; {name!r} has the dimensions {', '.join(dims)}"
            + (f": pick one entry, e.g. plot({name!r}, {hint})" if hint else ""))


def selection_words(where: Mapping[str, int]) -> str:
    """" (mu = 0, s = 3)" for a selection of entries; "" for none."""
    return f" ({', '.join(f'{k} = {v}' for k, v in where.items())})" if where else ""


def plot_steps(ax, t, value, se, *, label: str, band_label: str, ylabel: str, title: str, color: str | None = None):
    """A curve against the training step with its ± se band (labelled `band_label`; none where se is None
    or zero everywhere) on `ax` (None: a new pyplot figure), in `color` (None: the axes' next colour);
    axes in words, `title` where the axes have none yet. Returns the Axes."""
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(layout="constrained")
    t, value = np.asarray(t), np.asarray(value, dtype=float)
    (line,) = ax.plot(t, value, color=color, lw=1.8, label=label, zorder=3)
    if se is not None and np.any(np.asarray(se) > 0):
        se = np.asarray(se, dtype=float)
        ax.fill_between(t, value - se, value + se, color=line.get_color(), alpha=0.25, lw=0, label=band_label,
                        zorder=2)
    ax.set_xlabel("training step t")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not ax.get_title():
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return ax


def _fits(shape: tuple, pattern: tuple) -> bool:
    return len(shape) == len(pattern) and all(p is None or p == s for s, p in zip(shape, pattern))
