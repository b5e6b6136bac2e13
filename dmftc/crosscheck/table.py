"""Plain-text rendering of a cross-check report for the terminal."""

from __future__ import annotations

import math
import textwrap

from dmftc.crosscheck.fit import format_measured, format_power


def render_table(report) -> str:
    """Distances per quantity and size, then the fitted rates, then the summary.

    An unresolved bias (indistinguishable from zero at 2 sigma) is shown as an
    upper bound "< x"; "DMFT-limited" marks sizes where the DMFT's own Monte
    Carlo error dominates the uncertainty of the bias. A report without a DMFT ("cauchy" mode) opens
    with its preface, and its size column names both sizes of each difference ("64→128").
    """
    if report.mode == "cauchy":
        lines = [f"Finite networks against each other as {report.size_name} grows (no DMFT)",
                 *textwrap.wrap(report.preface, width=100), ""]
    else:
        lines = [f"DMFT vs finite networks as {report.size_name} grows", ""]
    lines += _distance_rows(report)
    lines += [""] + _rate_rows(report)
    lines += [""] + textwrap.wrap(report.summary, width=100)
    return "\n".join(lines)


def _distance_rows(report) -> list[str]:
    width = max([len("quantity"), *(len(q.name) for q in report.quantities)])
    cauchy = report.mode == "cauchy"
    labels = ([f"{n}→{m}" for n, m in zip(report.sizes, report.reference_sizes)] if cauchy
              else [str(n) for n in report.sizes])
    sw = max([6, len(report.size_name), *map(len, labels)])
    limited = "  larger-size-limited" if cauchy else "  DMFT-limited"
    head = f"{'quantity':<{width}}  {report.size_name:>{sw}}  {'seeds':>5}  {'bias':<21}  {'fluct':<21}  {'naive':>8}  {'noise':>8}"
    rows = [head, "-" * len(head)]
    for q in report.quantities:
        for n, d in zip(labels, q.distances):
            bias = _pm(d.bias, d.bias_se) if d.resolved else f"< {d.bias_upper:.2e}"
            note = limited if d.reference_limited else ""
            rows.append(f"{q.name:<{width}}  {n:>{sw}}  {d.n_seeds:>5}  {bias:<21}  {_pm(d.fluct, d.fluct_se):<21}  "
                        f"{d.naive:>8.2e}  {d.noise:>8.2e}{note}")
    return rows


def _rate_rows(report) -> list[str]:
    labels = [f"{q.name} {k}" for q in report.quantities for k in ("bias", "fluct")]
    width = max([len("rate"), *map(len, labels)])
    head = f"{'rate':<{width}}  {'measured':<20}  {'predicted':<10}  {'chi2/dof':>8}  verdict"
    rows = [head, "-" * len(head)]
    for q in report.quantities:
        for kind, fit, v in (("bias", q.bias_fit, q.bias_verdict), ("fluct", q.fluct_fit, q.fluct_verdict)):
            measured = "-" if math.isnan(fit.exponent) else format_measured(fit.size_name, fit.exponent, fit.exponent_se)
            chi2 = "-" if math.isnan(fit.chi2_dof) else f"{fit.chi2_dof:.2f}"
            pred = format_power(fit.size_name, v.predicted)
            rows.append(f"{q.name + ' ' + kind:<{width}}  {measured:<20}  {pred:<10}  {chi2:>8}  {v.status}")
    return rows


def _pm(value: float, se: float) -> str:
    return f"{value:.3e} ± {se:.1e}"
