"""Figures of a cross-check, written as PNG.

Figures are built on matplotlib's Agg canvas directly (no pyplot), so plotting
never changes the backend or global state of a caller's session (a notebook,
say) and works without a display. `curves_figure` and `convergence_figure`
build the figures (tests read them through matplotlib's objects);
`plot_curves` and `plot_convergence` write them.
"""

from __future__ import annotations

import re

import numpy as np

from dmftc.crosscheck.files import save_figure_atomic
from dmftc.crosscheck.fit import format_measured, format_power
from dmftc.errors import DmftcError

_BIAS, _FLUCT, _NAIVE = "tab:red", "tab:blue", "0.55"
#: the line style of a fit through values not all distinguishable from zero (never solid)
UNRESOLVED_STYLE = "-."
#: quantities compared by `dmftc check` that are not order parameters of the notation table
_QUANTITY_WORDS = {"loss": "training loss", "f": "network output f", "Htop": "residual-stream kernel H at the top"}
#: order-parameter bases and what they are at a numbered position (check's names: Phi1, G2, H3, A1)
_POSITION_WORDS = {"Phi": "feature kernel Φ", "G": "gradient kernel G", "H": "residual-stream kernel H",
                   "A": "attention logits (head average)"}


def size_words(size_name: str) -> str:
    """The size axis in words with its symbol: "width N", "depth L", "number of attention heads H"."""
    from dmftc.notation import SIZE_MEANINGS

    meaning = SIZE_MEANINGS.get(size_name)
    if meaning is None:
        return f"size {size_name}"
    word = re.split(r" \(|:", meaning)[0]
    return f"{word} {size_name}"


def quantity_words(name: str) -> str:
    """A compared quantity in words with its symbol: "Phi1" -> "feature kernel Φ at layer 1"."""
    if name in _QUANTITY_WORDS:
        return _QUANTITY_WORDS[name]
    m = re.fullmatch(r"([A-Za-z]+?)(\d+)", name)
    if m and m.group(1) in _POSITION_WORDS:
        where = "block" if m.group(1) == "A" else "position" if m.group(1) == "H" else "layer"
        return f"{_POSITION_WORDS[m.group(1)]} at {where} {m.group(2)}"
    return name


def plot_curves(reference_curve, finite_means_by_size, finite_se_by_size, path, ylabel="training loss", *,
                size_name="N", reference_se=None, title=None, logy=None):
    """Write `curves_figure(...)` to `path` (a PNG, atomically) and return the path."""
    fig = curves_figure(reference_curve, finite_means_by_size, finite_se_by_size, ylabel, size_name=size_name,
                        reference_se=reference_se, title=title, logy=logy)
    return save_figure_atomic(fig, path)


def curves_figure(reference_curve, finite_means_by_size, finite_se_by_size, ylabel="training loss", *,
                  size_name="N", reference_se=None, title=None, logy=None):
    """Curves of every size (seed mean with a standard-error band) over the DMFT curve.

    The lower panel shows (finite mean - DMFT), where small differences are visible. With no DMFT
    (`reference_curve` None: Adam) there is no black curve and the lower panel shows each size's mean
    minus that of the largest size.

    Parameters
    ----------
    reference_curve : array_like, shape (T+1,), or None
        The DMFT curve (black); None where no DMFT exists.
    finite_means_by_size, finite_se_by_size : mapping of int to array_like, shape (T+1,)
        Seed means and their standard errors (see `seed_mean_se`).
    ylabel : str
        The quantity in words.
    size_name : str
    reference_se : array_like, optional
        The DMFT's Monte Carlo standard error, drawn as a grey band round the DMFT curve in both panels
        (none where it is zero everywhere: an exact DMFT).
    title : str, optional
    logy : bool, optional
        Log-scale y; by default when the curves are positive and span over 1.5 decades.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.ticker import MaxNLocator

    sizes = sorted(finite_means_by_size)
    dmft = reference_curve is not None
    ref = _curve(reference_curve if dmft else finite_means_by_size[sizes[-1]],
                 "DMFT curve" if dmft else f"mean at {size_name}={sizes[-1]}")
    fig, (top, bottom) = _figure(2, height_ratios=(3, 2), sharex=True)
    t = np.arange(ref.size)
    for n, color in zip(sizes, _colors(len(sizes))):
        mean = _curve(finite_means_by_size[n], f"mean at {size_name}={n}", ref.size)
        se = _curve(finite_se_by_size[n], f"standard error at {size_name}={n}", ref.size)
        _band(top, t, mean, se, color, f"{size_words(size_name)} = {n}")
        _band(bottom, t, mean - ref, se, color, None)
    if dmft:
        _reference(top, bottom, t, ref, reference_se)
    else:
        bottom.axhline(0.0, color="black", lw=1.0, zorder=5)
    top.set_ylabel(ylabel)
    bottom.set_ylabel("finite − DMFT" if dmft else f"mean − mean at {size_name}={sizes[-1]}")
    bottom.set_xlabel("training step t")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    if logy if logy is not None else _wants_log(ref, [finite_means_by_size[n] for n in sizes]):
        top.set_yscale("log")
    top.legend(fontsize=8, ncol=2)
    against = "vs DMFT" if dmft else "(no DMFT)"
    top.set_title(title or f"{ylabel}: finite networks (seed mean ± s.e.) {against}")
    return fig


def plot_convergence(report, quantity, path):
    """Write `convergence_figure(report, quantity)` to `path` (a PNG, atomically) and return the path."""
    return save_figure_atomic(convergence_figure(report, quantity), path)


def convergence_figure(report, quantity):
    """Bias and fluctuation of one quantity against the size, on log-log axes.

    Error bars are standard errors; unresolved biases are drawn as upper
    bounds (open triangles). A fit through values all resolved from zero is a
    solid line; one through values some of which are resolved is dash-dotted
    and says so in the legend (it is no measured rate); one through none is
    not drawn, which the upper bounds' legend entry says. Dashed lines are the predicted
    slopes through the fits' centres; grey crosses the naive distance
    |seed mean - DMFT|, which falls like n^-1/2 once noise dominates it.
    Every series with no point is left out of the legend. A report without a DMFT (mode "cauchy") plots
    the distances of each size from the limit implied by the next size (`crosscheck.cauchy`).

    Parameters
    ----------
    report : Report
    quantity : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    q = report.quantity(quantity)
    fig, (ax,) = _figure(1)
    n = np.asarray(report.sizes, dtype=float)
    res = np.array([d.resolved for d in q.distances])
    _points(ax, n[res], np.array([d.bias for d in q.distances])[res],
            np.array([d.bias_se for d in q.distances])[res], _BIAS, "o", "bias")
    no_fit = "" if _fit_drawn(q.bias_fit) else "; no fit drawn"
    _open_points(ax, n[~res], np.array([d.bias_upper for d in q.distances])[~res], _BIAS, "v",
                 f"bias upper bound (unresolved{no_fit})")
    _points(ax, n, np.array([d.fluct for d in q.distances]), np.array([d.fluct_se for d in q.distances]),
            _FLUCT, "s", "fluctuation")
    cauchy = report.mode == "cauchy"
    _crosses(ax, n, np.array([d.naive for d in q.distances]), _NAIVE,
             "naive, from |seed mean − next size's|" if cauchy else "naive |seed mean − DMFT|")
    for fit, verdict, color in ((q.bias_fit, q.bias_verdict, _BIAS), (q.fluct_fit, q.fluct_verdict, _FLUCT)):
        _fit_lines(ax, fit, verdict, color)
    _floor_line(ax, n, q.bias_verdict)
    if not cauchy:  # a Cauchy distance's reference noise (the next size's) is in its error bar
        _reference_floor(ax, q.distances)
    _log_axes(ax, report.sizes, report.size_name)
    if cauchy:
        ax.set_ylabel(f"RMS distance to the {report.size_name} → ∞ limit\n(from successive sizes)")
    ax.set_title(f"{quantity_words(quantity)}: bias {q.bias_verdict.status}, fluctuation "
                 f"{q.fluct_verdict.status}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return fig


def _figure(rows, height_ratios=None, sharex=False):
    """A Figure on the Agg canvas (no pyplot, no global backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 5.5) if rows > 1 else (9.0, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=sharex, squeeze=False,
                        gridspec_kw={"height_ratios": height_ratios} if height_ratios else None)
    return fig, tuple(axes[:, 0])


def _curve(a, what, length=None) -> np.ndarray:
    """`a` as a float vector of one value per step; a DmftcError naming `what` otherwise."""
    v = np.asarray(a, dtype=float)
    if v.ndim != 1 or (length is not None and v.size != length):
        want = f"({length},)" if length is not None else "(T+1,)"
        raise DmftcError(f"plot_curves: {what} has shape {v.shape}; expected {want} (one value per step)")
    return v


def _colors(k: int):
    """k colours of the viridis map, dark to light, skipping its palest end."""
    from matplotlib import colormaps

    return colormaps["viridis"](np.linspace(0.1, 0.85, max(k, 1)))[:k]


def _band(ax, t, mean, se, color, label) -> None:
    """A curve and its ± se band in one colour."""
    ax.plot(t, mean, color=color, lw=1.2, label=label)
    ax.fill_between(t, mean - se, mean + se, color=color, alpha=0.25, lw=0)


def _reference(top, bottom, t, ref, reference_se) -> None:
    """The DMFT curve in black on top of everything; its Monte Carlo error as a grey band, labelled
    in the legend, where it is given and not zero everywhere."""
    e = None if reference_se is None else np.broadcast_to(np.asarray(reference_se, dtype=float), ref.shape)
    has_band = e is not None and bool(np.any(e > 0))
    top.plot(t, ref, color="black", lw=2.0, label="DMFT" if has_band or e is None else "DMFT (exact)", zorder=5)
    bottom.axhline(0.0, color="black", lw=1.5, zorder=5)
    if has_band:
        top.fill_between(t, ref - e, ref + e, color="0.35", alpha=0.35, lw=0, zorder=4,
                         label="DMFT ± Monte Carlo s.e.")
        bottom.fill_between(t, -e, e, color="0.35", alpha=0.35, lw=0, zorder=4)


def _wants_log(ref, means) -> bool:
    """Whether the curves are positive and span over 1.5 decades."""
    values = np.concatenate([ref, *[np.asarray(m, dtype=float) for m in means]])
    return bool(np.all(values > 0) and values.max() / values.min() > 10**1.5)


def _drawable(y) -> np.ndarray:
    """Which values a log axis can show (finite and positive)."""
    y = np.asarray(y, dtype=float)
    return np.isfinite(y) & (y > 0)


def _points(ax, n, y, se, color, marker, label) -> None:
    """Points with error bars clipped above zero (a log axis cannot show the rest); nothing, and no
    legend entry, where no point can be shown."""
    ok = _drawable(y)
    if not ok.any():
        return
    y, se = y[ok], np.where(np.isfinite(se[ok]), se[ok], 0.0)
    lower = np.minimum(se, 0.9 * y)
    ax.errorbar(n[ok], y, yerr=[lower, se], fmt=marker, color=color, ms=6, capsize=3, label=label, zorder=4)


def _open_points(ax, n, y, color, marker, label) -> None:
    """Open markers (upper bounds); nothing, and no legend entry, where no point can be shown."""
    ok = _drawable(y)
    if ok.any():
        ax.scatter(n[ok], y[ok], marker=marker, s=50, facecolors="none", edgecolors=color, label=label, zorder=4)


def _crosses(ax, n, y, color, label) -> None:
    """Crosses; nothing, and no legend entry, where no point can be shown."""
    ok = _drawable(y)
    if ok.any():
        ax.scatter(n[ok], y[ok], marker="x", color=color, label=label, zorder=3)


def fit_resolved(fit) -> bool:
    """Whether every point a power law was fitted on is distinguishable from zero (a measured rate)."""
    used = np.array(fit.used, dtype=bool)
    return bool(used.any() and np.all(np.array(fit.resolved, dtype=bool)[used]))


def _fit_drawn(fit) -> bool:
    """Whether a power law is drawn: fitted on 2 points or more, at least one resolved from zero."""
    used = np.array(fit.used, dtype=bool)
    return bool(used.sum() >= 2 and np.isfinite(fit.exponent) and np.array(fit.resolved, dtype=bool)[used].any())


def _fit_lines(ax, fit, verdict, color) -> None:
    """The fitted power law and the predicted slope through its centre (dashed), where `_fit_drawn`."""
    if _fit_drawn(fit):
        fit_and_prediction(ax, fit, verdict.predicted, color)


def fit_and_prediction(ax, fit, predicted: float | None, color: str, lw: float = 1.2) -> None:
    """The fitted power law over the sizes it used (solid when it is a measured rate, `fit_resolved`;
    dash-dotted and labelled unresolved otherwise) and the predicted slope (dashed) through its centre."""
    used = np.array(fit.used, dtype=bool)
    n = np.asarray(fit.sizes, dtype=float)[used]
    grid = np.geomspace(n.min(), n.max(), 50)
    label = f"fit {format_measured(fit.size_name, fit.exponent, fit.exponent_se)}"
    if fit_resolved(fit):
        ax.plot(grid, fit(grid), color=color, lw=1.5, label=label)
    else:
        unresolved = int(used.sum() - np.sum(np.array(fit.resolved, dtype=bool)[used]))
        ax.plot(grid, fit(grid), color=color, lw=1.0, ls=UNRESOLVED_STYLE, alpha=0.8,
                label=f"{label}\n(unresolved at {unresolved} of {int(used.sum())} sizes: not a measured rate)")
    if predicted is not None:
        centre = np.exp(np.mean(np.log(n)))
        ax.plot(grid, fit(centre) * (grid / centre) ** predicted, color=color, lw=lw, ls="--",
                label=f"predicted slope {format_power(fit.size_name, predicted)}")


def _floor_line(ax, n, verdict) -> None:
    """The significant floor model of the bias (dotted), if any."""
    fl = verdict.floor
    if fl is None or not fl.significant:
        return
    grid = np.geomspace(n.min(), n.max(), 50)
    ax.plot(grid, fl.floor + fl.coef * grid**fl.exponent, color=_BIAS, lw=1.0, ls=":",
            label=f"floor model: {fl.floor:.2g} ± {fl.floor_se:.1g}")


def _reference_floor(ax, distances) -> None:
    """The DMFT's own Monte Carlo error (RMS) as a dotted horizontal line, where there is one."""
    level = max(d.reference_floor for d in distances)
    if level > 0:
        ax.axhline(level, color="0.3", lw=1.0, ls=":", label="DMFT Monte Carlo error (RMS)")


def _log_axes(ax, sizes, size_name) -> None:
    """Log-log axes with the sizes as ticks, labelled in words."""
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(list(sizes), [str(s) for s in sizes])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(size_words(size_name))
    ax.set_ylabel("RMS distance to the DMFT")
    ax.grid(True, which="both", alpha=0.3)
