"""Figures and tables a reader is not misled by (issue 27, item 8), read through matplotlib's objects.

Every figure is built from small synthetic ensembles (no DMFT solve): every axis is labelled in words,
every legend entry stands for something drawn, a fit through values not resolved from zero is never a
solid line, and the DMFT curve carries its Monte Carlo band where it has a standard error.
"""

from __future__ import annotations

import numpy as np
import pytest

from dmftc.crosscheck import crosscheck, seed_mean_se
from dmftc.crosscheck.plots import (UNRESOLVED_STYLE, convergence_figure, curves_figure, fit_resolved,
                                    quantity_words, size_words)
from dmftc.crosscheck.report import markdown_row

SIZES = (64, 128, 256, 512)


@pytest.fixture
def report(synthetic):
    """loss: no bias resolved from zero (its fit not drawn); f: a fit through resolved values only."""
    rep = crosscheck(synthetic.reference(), synthetic.ensembles(0, sizes=SIZES, seeds=8, c=3.0))
    loss, f = rep.quantity("loss"), rep.quantity("f")
    assert not any(d.resolved for d in loss.distances) and sum(loss.bias_fit.used) >= 2
    assert fit_resolved(f.bias_fit) and not all(d.resolved for d in f.distances)
    return rep


@pytest.fixture
def partial(synthetic):
    """loss: a bias fit through 4 values, 2 of them resolved from zero."""
    rep = crosscheck(synthetic.reference(), synthetic.ensembles(0, sizes=SIZES, seeds=8, c=10.0))
    fit = rep.quantity("loss").bias_fit
    assert all(fit.used) and sum(fit.resolved) == 2
    return rep


@pytest.fixture
def curves(synthetic):
    """The DMFT loss curve of the synthetic ensembles, and two sizes' seed means and standard errors."""
    data = synthetic.ensembles(1, sizes=(64, 128), seeds=8)
    stats = {n: seed_mean_se(d["loss"]) for n, d in data.items()}
    return synthetic.reference()["loss"], {n: m for n, (m, _) in stats.items()}, {n: s for n, (_, s) in stats.items()}


def _has_data(artist) -> bool:
    """Whether a legend's artist draws something: a line, markers, error bars or a filled band."""
    from matplotlib.collections import Collection
    from matplotlib.container import Container
    from matplotlib.lines import Line2D

    if isinstance(artist, Container):
        return any(_has_data(a) for a in artist.get_children())
    if not artist.get_visible():
        return False
    if isinstance(artist, Line2D):
        xy = np.asarray(artist.get_xydata(), dtype=float)
        return bool(xy.size and np.isfinite(xy).all(axis=1).any())
    if isinstance(artist, Collection):
        return len(artist.get_offsets()) > 0 or any(len(p.vertices) for p in artist.get_paths())
    return False


def _assert_readable(fig) -> None:
    """Every axis labelled (x on it or on the panel it shares x with), every legend entry drawn."""
    for ax in fig.axes:
        assert ax.get_ylabel().strip(), f"axis {ax.get_title()!r} has no y label"
        siblings = ax.get_shared_x_axes().get_siblings(ax)
        assert any(a.get_xlabel().strip() for a in siblings), f"axis {ax.get_title()!r} has no x label"
        legend = ax.get_legend()
        if legend is None:
            continue
        handles, labels = ax.get_legend_handles_labels()
        assert [t.get_text() for t in legend.get_texts()] == labels
        for handle, label in zip(handles, labels):
            assert _has_data(handle), f"legend entry {label!r} draws nothing"


def _fit_lines(ax) -> dict[str, str]:
    """Label -> line style of every fitted power law drawn on `ax`."""
    return {line.get_label(): line.get_linestyle() for line in ax.get_lines() if line.get_label().startswith("fit ")}


def test_convergence_figures_are_labelled_and_every_legend_entry_is_drawn(report, partial):
    for rep in (report, partial):
        for name in rep.names:
            _assert_readable(convergence_figure(rep, name))


def test_axes_are_words_with_their_symbols(report):
    ax = convergence_figure(report, "loss").axes[0]
    assert ax.get_xlabel() == "width N" and "DMFT" in ax.get_ylabel()
    assert ax.get_title().startswith("training loss:")
    assert size_words("L") == "depth L" and size_words("H") == "number of attention heads H"
    assert quantity_words("Phi1") == "feature kernel Φ at layer 1" and quantity_words("G2").startswith("gradient")


def test_a_series_with_no_point_has_no_legend_entry(report):
    labels = convergence_figure(report, "loss").axes[0].get_legend_handles_labels()[1]
    assert "bias" not in labels and "bias upper bound (unresolved; no fit drawn)" in labels


def test_no_fit_is_drawn_through_values_none_of_which_is_resolved(report):
    ax = convergence_figure(report, "loss").axes[0]
    fits = _fit_lines(ax)
    assert len(fits) == 1 and "unresolved" not in next(iter(fits))   # the fluctuation's alone
    assert [line.get_label() for line in ax.get_lines() if line.get_label().startswith("predicted")] == [
        "predicted slope N^-1/2"]


def test_a_fit_through_partly_unresolved_values_is_not_a_solid_line(partial, report):
    _assert_readable(convergence_figure(partial, "loss"))
    fits = _fit_lines(convergence_figure(partial, "loss").axes[0])
    bias = [label for label in fits if "unresolved at 2 of 4 sizes" in label]
    assert len(bias) == 1 and fits[bias[0]] == UNRESOLVED_STYLE
    resolved = _fit_lines(convergence_figure(report, "f").axes[0])
    assert len(resolved) == 2 and set(resolved.values()) == {"-"}


def test_solid_fits_are_exactly_the_resolved_ones(report, partial):
    for rep in (report, partial):
        for name in rep.names:
            q = rep.quantity(name)
            styles = _fit_lines(convergence_figure(rep, name).axes[0])
            drawn = [fit for fit in (q.bias_fit, q.fluct_fit) if any(np.array(fit.resolved)[np.array(fit.used)])]
            assert sorted(s == "-" for s in styles.values()) == sorted(fit_resolved(fit) for fit in drawn)


def test_the_dmft_curve_has_its_monte_carlo_band(curves):
    ref, means, ses = curves
    fig = curves_figure(ref, means, ses, reference_se=np.full(ref.size, 2e-3))
    _assert_readable(fig)
    top, bottom = fig.axes
    band = [c for c in top.collections if c.get_label() == "DMFT ± Monte Carlo s.e."]
    assert len(band) == 1 and _has_data(band[0])
    lo, hi = band[0].get_paths()[0].vertices[:, 1].min(), band[0].get_paths()[0].vertices[:, 1].max()
    assert lo == pytest.approx(ref.min() - 2e-3) and hi == pytest.approx(ref.max() + 2e-3)
    assert len(bottom.collections) == len(means) + 1
    assert top.get_ylabel() == "training loss" and bottom.get_xlabel() == "training step t"


def test_an_exact_dmft_has_no_band_and_says_so(curves):
    ref, means, ses = curves
    for se, label in ((None, "DMFT"), (np.zeros(ref.size), "DMFT (exact)")):
        fig = curves_figure(ref, means, ses, reference_se=se)
        _assert_readable(fig)
        labels = fig.axes[0].get_legend_handles_labels()[1]
        assert label in labels and not any("s.e." in x for x in labels)


def test_steps_are_whole_numbers(curves):
    ref, means, ses = curves
    fig = curves_figure(ref[:4], {n: m[:4] for n, m in means.items()}, {n: s[:4] for n, s in ses.items()})
    fig.canvas.draw()
    ticks = fig.axes[1].get_xticks()
    assert np.allclose(ticks, np.round(ticks))


def test_markdown_rows_keep_their_cells_when_a_cell_holds_a_norm():
    mistune = pytest.importorskip("mistune")
    row = markdown_row(["||W(T) - W(0)|| / ||W(0)||", "L^0.37 ± 0.09", "L^0", "consistent"])
    html = mistune.create_markdown(plugins=["table"])("\n".join(
        ["| quantity | measured | predicted | verdict |", "| --- | --- | --- | --- |", row]))
    body = html.split("<tbody>")[1]
    assert body.count("<td") == 4 and "||W(T) - W(0)|| / ||W(0)||" in body
