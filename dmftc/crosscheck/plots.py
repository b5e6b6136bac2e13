"""Figures of a cross-check, written as PNG.

Figures are built on matplotlib's Agg canvas directly (no pyplot), so plotting
never changes the backend or global state of a caller's session (a notebook,
say) and works without a display.
"""

from __future__ import annotations

import numpy as np

from dmftc.crosscheck.files import save_figure_atomic
from dmftc.crosscheck.fit import format_measured, format_power
from dmftc.errors import DmftcError

_BIAS, _FLUCT, _NAIVE = "tab:red", "tab:blue", "0.55"


def plot_curves(reference_curve, finite_means_by_size, finite_se_by_size, path, ylabel="loss", *,
                size_name="N", reference_se=None, title=None, logy=None):
    """Curves of every size (seed mean with a standard-error band) over the DMFT curve.

    The lower panel shows (finite mean - DMFT), where small differences are visible.

    Parameters
    ----------
    reference_curve : array_like, shape (T+1,)
        The DMFT curve (black).
    finite_means_by_size, finite_se_by_size : mapping of int to array_like, shape (T+1,)
        Seed means and their standard errors (see `seed_mean_se`).
    path : str or os.PathLike
        Where to write the PNG (atomically).
    ylabel : str
    size_name : str
    reference_se : array_like, optional
        The DMFT's Monte Carlo error, drawn as a grey band.
    title : str, optional
    logy : bool, optional
        Log-scale y; by default when the curves are positive and span over 1.5 decades.

    Returns
    -------
    Path
    """
    ref = _curve(reference_curve, "DMFT curve")
    sizes = sorted(finite_means_by_size)
    fig, (top, bottom) = _figure(2, height_ratios=(3, 2), sharex=True)
    t = np.arange(ref.size)
    for n, color in zip(sizes, _colors(len(sizes))):
        mean = _curve(finite_means_by_size[n], f"mean at {size_name}={n}", ref.size)
        se = _curve(finite_se_by_size[n], f"standard error at {size_name}={n}", ref.size)
        _band(top, t, mean, se, color, f"{size_name}={n}")
        _band(bottom, t, mean - ref, se, color, None)
    _reference(top, bottom, t, ref, reference_se)
    top.set_ylabel(ylabel)
    bottom.set_ylabel(f"{ylabel} − DMFT")
    bottom.set_xlabel("step t")
    if logy if logy is not None else _wants_log(ref, [finite_means_by_size[n] for n in sizes]):
        top.set_yscale("log")
    top.legend(fontsize=8, ncol=2)
    top.set_title(title or f"{ylabel}: finite networks (mean ± s.e.) vs DMFT")
    return save_figure_atomic(fig, path)


def plot_convergence(report, quantity, path):
    """Bias and fluctuation of one quantity against the size, on log-log axes.

    Error bars are standard errors; unresolved biases are drawn as upper
    bounds (open triangles); solid lines are the fitted power laws, dashed
    lines the predicted slopes through the fits' centres; grey crosses the
    naive distance |seed mean - DMFT|, which falls like n^-1/2 once noise
    dominates it.

    Parameters
    ----------
    report : Report
    quantity : str
    path : str or os.PathLike

    Returns
    -------
    Path
    """
    q = report.quantity(quantity)
    fig, (ax,) = _figure(1)
    n = np.asarray(report.sizes, dtype=float)
    bias = np.array([d.bias for d in q.distances])
    res = np.array([d.resolved for d in q.distances])
    _points(ax, n[res], bias[res], np.array([d.bias_se for d in q.distances])[res], _BIAS, "o", "bias")
    ax.scatter(n[~res], [d.bias_upper for d, r in zip(q.distances, res) if not r], marker="v", s=50,
               facecolors="none", edgecolors=_BIAS, label="bias upper bound (unresolved)" if (~res).any() else None)
    _points(ax, n, np.array([d.fluct for d in q.distances]), np.array([d.fluct_se for d in q.distances]),
            _FLUCT, "s", "fluctuation")
    ax.scatter(n, [d.naive for d in q.distances], marker="x", color=_NAIVE, label="naive |mean − DMFT|", zorder=3)
    for fit, verdict, color in ((q.bias_fit, q.bias_verdict, _BIAS), (q.fluct_fit, q.fluct_verdict, _FLUCT)):
        _fit_lines(ax, fit, verdict, color)
    _floor_line(ax, n, q.bias_verdict)
    _reference_floor(ax, q.distances)
    _log_axes(ax, report.sizes, report.size_name)
    ax.set_title(f"{quantity}: bias {q.bias_verdict.status}, fluctuation {q.fluct_verdict.status}", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    return save_figure_atomic(fig, path)


def _figure(rows, height_ratios=None, sharex=False):
    """A Figure on the Agg canvas (no pyplot, no global backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 5.5 if rows > 1 else 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=sharex, squeeze=False,
                        gridspec_kw={"height_ratios": height_ratios} if height_ratios else None)
    return fig, tuple(axes[:, 0])


def _curve(a, what, length=None) -> np.ndarray:
    v = np.asarray(a, dtype=float)
    if v.ndim != 1 or (length is not None and v.size != length):
        want = f"({length},)" if length is not None else "(T+1,)"
        raise DmftcError(f"plot_curves: {what} has shape {v.shape}; expected {want} (one value per step)")
    return v


def _colors(k: int):
    from matplotlib import colormaps

    return colormaps["viridis"](np.linspace(0.1, 0.85, max(k, 1)))[:k]


def _band(ax, t, mean, se, color, label) -> None:
    ax.plot(t, mean, color=color, lw=1.2, label=label)
    ax.fill_between(t, mean - se, mean + se, color=color, alpha=0.25, lw=0)


def _reference(top, bottom, t, ref, reference_se) -> None:
    """The DMFT curve in black on top of everything; its own error as a grey band."""
    top.plot(t, ref, color="black", lw=2.0, label="DMFT", zorder=5)
    bottom.axhline(0.0, color="black", lw=1.5, zorder=5)
    if reference_se is not None:
        e = np.broadcast_to(np.asarray(reference_se, dtype=float), ref.shape)
        top.fill_between(t, ref - e, ref + e, color="0.5", alpha=0.3, lw=0, zorder=4)
        bottom.fill_between(t, -e, e, color="0.5", alpha=0.3, lw=0, zorder=4, label="DMFT s.e.")


def _wants_log(ref, means) -> bool:
    values = np.concatenate([ref, *[np.asarray(m, dtype=float) for m in means]])
    return bool(np.all(values > 0) and values.max() / values.min() > 10**1.5)


def _points(ax, n, y, se, color, marker, label) -> None:
    """Points with error bars clipped above zero (a log axis cannot show the rest)."""
    lower = np.minimum(se, 0.9 * y)
    ax.errorbar(n, y, yerr=[lower, se], fmt=marker, color=color, ms=6, capsize=3, label=label, zorder=4)


def _fit_lines(ax, fit, verdict, color) -> None:
    """The fitted power law (solid) and the predicted slope through its centre (dashed)."""
    used = np.array(fit.used)
    if used.sum() < 2 or not np.isfinite(fit.exponent):
        return
    n = np.asarray(fit.sizes)[used]
    grid = np.geomspace(n.min(), n.max(), 50)
    name = fit.size_name
    ax.plot(grid, fit(grid), color=color, lw=1.5,
            label=f"fit {format_measured(name, fit.exponent, fit.exponent_se)}")
    centre = np.exp(np.mean(np.log(n)))
    ax.plot(grid, fit(centre) * (grid / centre) ** verdict.predicted, color=color, lw=1.2, ls="--",
            label=f"predicted {format_power(name, verdict.predicted)}")


def _floor_line(ax, n, verdict) -> None:
    fl = verdict.floor
    if fl is None or not fl.significant:
        return
    grid = np.geomspace(n.min(), n.max(), 50)
    ax.plot(grid, fl.floor + fl.coef * grid**fl.exponent, color=_BIAS, lw=1.0, ls=":",
            label=f"floor model: {fl.floor:.2g} ± {fl.floor_se:.1g}")


def _reference_floor(ax, distances) -> None:
    level = max(d.reference_floor for d in distances)
    if level > 0:
        ax.axhline(level, color="0.3", lw=1.0, ls=":", label="DMFT Monte Carlo error (RMS)")


def _log_axes(ax, sizes, size_name) -> None:
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(list(sizes), [str(s) for s in sizes])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(size_name)
    ax.set_ylabel("RMS distance to DMFT")
    ax.grid(True, which="both", alpha=0.3)
