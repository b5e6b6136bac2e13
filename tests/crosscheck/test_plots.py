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
    """Whether a legend's artist draws something: a line, markers, error bars, a filled band or a histogram."""
    from matplotlib.collections import Collection
    from matplotlib.container import Container
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if isinstance(artist, Container):
        return any(_has_data(a) for a in artist.get_children())
    if not artist.get_visible():
        return False
    if isinstance(artist, Line2D):
        xy = np.asarray(artist.get_xydata(), dtype=float)
        return bool(xy.size and np.isfinite(xy).all(axis=1).any())
    if isinstance(artist, Collection):
        return len(artist.get_offsets()) > 0 or any(len(p.vertices) for p in artist.get_paths())
    if isinstance(artist, Patch):
        return len(artist.get_path().vertices) > 0
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


# ------------------------------------------------------------------ depth, heads, reproduce, logits figures
DEPTHS = (1, 2, 4, 8)


def _depth_report(alpha, exponents, unresolved=None):
    """A DepthReport at `alpha` whose quantities follow L^p exactly, 3 % errors; `unresolved` maps a quantity
    to the depths where its value is not resolved from zero (error 1.5 times the value)."""
    from dmftc.crosscheck.depth import DepthFacts, DepthReport, analyse_depth
    from dmftc.crosscheck.heads import Prediction

    unresolved = unresolved or {}
    per_depth = {L: {q: (L ** p, (1.5 if L in unresolved.get(q, ()) else 0.03) * L ** p, L not in unresolved.get(q, ()))
                     for q, p in exponents.items()} for L in DEPTHS}
    preds = {q: Prediction(float(p), "falls" if p < 0 else "flat", "synthetic", gate=True) for q, p in exponents.items()}
    facts = DepthFacts("nontrivial" if alpha == 0.5 else "trivial", 0.0, "frozen", -0.5)
    return DepthReport("synthetic", alpha, DEPTHS, {"N": 8, "H": 4}, 8, 0, 5, facts, analyse_depth(per_depth, preds),
                       ((1.0, 0.5),) * len(DEPTHS))


@pytest.fixture
def depth_reports():
    """alpha_L = 1/2 with every value resolved; alpha_L = 1 with the kernel change unresolved at 2 of 4 depths
    and the branch sum at none."""
    half = _depth_report(0.5, {"kq_displacement": -0.5, "kernel_change": 0.0, "branch_sum": 0.0, "logit_change": 0.0})
    one = _depth_report(1.0, {"kq_displacement": 0.0, "kernel_change": -1.0, "branch_sum": -0.5, "logit_change": 0.0},
                        unresolved={"kernel_change": (4, 8), "branch_sum": DEPTHS})
    return half, one


def _fit_styles(ax) -> list[str]:
    """The line style of every fitted power law drawn on `ax` (two may share a label)."""
    return sorted(line.get_linestyle() for line in ax.get_lines() if line.get_label().startswith("fit "))


def _legend_labels(fig) -> list[str]:
    return [label for ax in fig.axes for label in ax.get_legend_handles_labels()[1]]


def _assert_words(fig, names) -> None:
    """No axis label, title or legend entry is one of the code's variable names (`names`, "alpha_L", ...)."""
    texts = [t for ax in fig.axes for t in (ax.get_xlabel(), ax.get_ylabel(), ax.get_title())] + _legend_labels(fig)
    for text in texts:
        assert not any(name in text for name in (*names, "alpha_L", "alpha_A", "-> oo")), text


def test_depth_figure_has_its_axes_in_words_and_legends_that_name_the_scaling(depth_reports):
    from dmftc.crosscheck.depth import QUANTITIES, YLABELS, depth_figure

    fig = depth_figure(depth_reports)
    _assert_readable(fig)
    _assert_words(fig, QUANTITIES)
    assert [ax.get_ylabel() for ax in fig.axes] == [YLABELS[q] for q in QUANTITIES]
    assert {ax.get_xlabel() for ax in fig.axes} == {"depth L"}
    labels = _legend_labels(fig)
    assert any(x.startswith("branches scaled β0 / L^1/2 (α_L = 1/2)") for x in labels)
    assert any(x.startswith("branches scaled β0 / L (α_L = 1)") for x in labels)


def test_depth_figure_draws_solid_fits_only_through_resolved_values(depth_reports):
    from dmftc.crosscheck.depth import QUANTITIES, depth_figure

    half, one = depth_reports
    fig = depth_figure(depth_reports)
    for ax, name in zip(fig.axes, QUANTITIES):
        drawn = [r.quantity(name).fit for r in (half, one) if any(r.quantity(name).fit.resolved)]
        assert sorted(s == "-" for s in _fit_styles(ax)) == sorted(fit_resolved(f) for f in drawn), name
    kernel = _fit_lines(fig.axes[QUANTITIES.index("kernel_change")])
    assert [s for label, s in kernel.items() if "unresolved at 2 of 4 sizes" in label] == [UNRESOLVED_STYLE]
    branch = fig.axes[QUANTITIES.index("branch_sum")]
    assert _fit_styles(branch) == ["-"]   # alpha_L = 1/2's alone: no fit through values none of which is resolved
    assert any("upper bound (unresolved; no fit drawn)" in x for x in branch.get_legend_handles_labels()[1])


def _head_report(size_name="N", unresolved=()):
    """A HeadReport along `size_name` whose every quantity falls as n^-1 (3 % errors); the quantities in
    `unresolved` have errors larger than their values at the two largest sizes."""
    from dmftc.crosscheck.fit import fit_power_law
    from dmftc.crosscheck.heads import DESCRIPTIONS, QUANTITIES, HeadReport, MeasuredQuantity, Prediction, judge

    quantities = []
    for name in QUANTITIES:
        values = np.array([1.0 / n for n in SIZES])
        ses = values * np.where((np.arange(len(SIZES)) >= 2) & (name in unresolved), 1.5, 0.03)
        fit = fit_power_law(SIZES, values, ses, size_name=size_name, label=DESCRIPTIONS[name])
        pred = Prediction(-1.0, "falls", "synthetic", gate=True)
        quantities.append(MeasuredQuantity(name, DESCRIPTIONS[name], tuple(values), tuple(ses), fit, pred,
                                           judge(name, fit, pred)))
    return HeadReport("synthetic", size_name, SIZES, 8, 0, 3, 4, "feature_learning", "collapse", tuple(quantities))


def test_head_figures_name_their_axes_in_words():
    from dmftc.crosscheck.heads import QUANTITIES, quantity_figure

    report = _head_report(unresolved=("headvar_change",))
    for q in report.quantities:
        fig = quantity_figure(report, q)
        _assert_readable(fig)
        _assert_words(fig, QUANTITIES)
        ax = fig.axes[0]
        assert ax.get_xlabel() == "key/query dimension per head N" and ax.get_ylabel() == q.description
        styles = _fit_lines(ax)
        assert list(styles.values()) == (["-"] if q.name != "headvar_change" else [UNRESOLVED_STYLE])


def test_reproduce_figures_name_their_axes_and_series_in_words():
    from dmftc.crosscheck.fit import fit_power_law
    from dmftc.crosscheck.heads import QUANTITIES
    from dmftc.reproduce import Phenomenon, heads_H_figure, heads_N_figure

    one, half = (Phenomenon(n, n, "consistent", "synthetic", (), "heads_N.png", {"heads": r.to_json()})
                 for n, r in (("head_collapse", _head_report()), ("no_collapse", _head_report(unresolved=QUANTITIES))))
    fig = heads_N_figure(one, half)
    _assert_readable(fig)
    _assert_words(fig, QUANTITIES)
    assert {ax.get_xlabel() for ax in fig.axes} == {"key/query dimension per head N"}
    assert any(x.startswith("logits scaled 1 / √N (α_A = 1/2)") for x in _legend_labels(fig))
    assert all(_fit_styles(ax) == sorted(["-", UNRESOLVED_STYLE]) for ax in fig.axes)   # 1/2: partly resolved
    variance = fit_power_law(SIZES, [1.0 / n for n in SIZES], [0.03 / n for n in SIZES], size_name="H")
    fig = heads_H_figure({"report": _head_report("H"), "fit": variance, "fixed_N": 8})
    _assert_readable(fig)
    _assert_words(fig, QUANTITIES)
    assert {ax.get_xlabel() for ax in fig.axes} == {"number of attention heads H"}
    assert "N = 8" in fig.get_suptitle()


def test_the_logit_law_figure_is_in_words_and_fits_only_resolved_distances():
    from dmftc.crosscheck.logits import VIEW_WORDS, compare_logit_laws, logit_laws_figure

    rng = np.random.default_rng(2)
    dmft = [rng.normal(size=(4, 1, 200, 2, 3, 3)) for _ in range(2)]
    finite = {}
    for H in (1, 2, 4, 8):
        a = rng.normal(size=(32, 4, 1, H, 2, 3, 3))
        a[:, -1] += 2.0 / H
        finite[H] = a
    report = compare_logit_laws(dmft, finite, views=("A(0)", "A(T)"))
    fig = logit_laws_figure(report, dmft, finite)
    _assert_readable(fig)
    *hists, dist = fig.axes
    assert [ax.get_xlabel() for ax in hists] == [VIEW_WORDS["A(0)"], VIEW_WORDS["A(T)"]]
    assert dist.get_xlabel() == "number of attention heads H" and "energy distance" in dist.get_ylabel()
    drawn = [law.fit for law in report.laws if any(law.fit.resolved)]
    assert sorted(s == "-" for s in _fit_styles(dist)) == sorted(fit_resolved(f) for f in drawn)
    assert "DMFT (H → ∞)" in hists[0].get_legend_handles_labels()[1]


def test_the_reproduce_report_keeps_its_table_cells_when_a_quantity_holds_a_norm():
    mistune = pytest.importorskip("mistune")
    from dmftc.reproduce import QUICK, Exponent, Phenomenon, Reproduction

    e = Exponent("kq_displacement", "key/query weight displacement ||W(T) - W(0)|| / ||W(0)||", "L", -0.51, 0.05,
                 -0.5, "synthetic", "consistent", "")
    result = Reproduction(True, QUICK, (Phenomenon("depth_tension", "Depth", "consistent", "s", (e,), "depth.png"),), 1.0)
    body = mistune.create_markdown(plugins=["table"])(result.markdown()).split("<tbody>")[1]
    assert body.count("<td") == 4 and "||W(T) - W(0)|| / ||W(0)||" in body
