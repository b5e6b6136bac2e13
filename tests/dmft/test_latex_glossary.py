"""The LaTeX as a paper prints it (issue 27, item 9): every printed symbol in the glossary with its meaning,
index ranges on every equation, the positions (the transformer's stream numbering) explained.

The systems are derived without code generation (seconds for all the examples).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
import sympy
from sympy.core.function import AppliedUndef

from dmftc.dmft import latex
from dmftc.dmft.derive import derive
from dmftc.graph.build import build_graph
from dmftc.notation import NOTATION
from dmftc.scaling.parameterization import resolve_parameterization
from dmftc.spec import load

from .latex_checks import balanced

ROOT = Path(__file__).resolve().parents[2]
SPECS = ("mlp_mup_relu", "mlp_ntk_relu", "mlp_sgd_momentum", "resnet_depth_mup", "transformer_mup",
         "transformer_heads")


@functools.cache
def system(name: str):
    spec = load(ROOT / "specs" / f"{name}.yaml")
    graph = build_graph(spec)
    return derive(spec, graph, resolve_parameterization(spec, graph))


def _expressions(sysm):
    """Every expression the LaTeX prints (the Gaussian maps of the lazy limit print their covariance only)."""
    for src in sysm.sources:
        yield from (src.field, src.coefficient * src.covariance)
    for e in sysm.equations:
        for expr in (e.lhs, sympy.sympify(e.rhs)):
            yield expr.xreplace({f: f.func(f.args[0]) for f in expr.atoms(AppliedUndef)
                                 if f.func.__name__ in ("GaussPhi", "GaussDPhi")})


def _rows(tex: str) -> dict[str, str]:
    """Label -> the align row (its last line) that ends with that label."""
    return {m.group(2): m.group(1) for m in re.finditer(r"([^\n]*) \\label\{([^}]+)\}", tex)}


@pytest.mark.parametrize("name", SPECS)
def test_every_printed_symbol_is_in_the_glossary_with_a_meaning(name):
    sysm = system(name)
    entries = {e.name: e for e in latex.glossary(sysm)}
    printed = set()
    for expr in _expressions(sysm):
        printed |= {x.base.name for x in expr.atoms(sympy.Indexed)}
        printed |= {f.func.__name__ for f in expr.atoms(AppliedUndef)}
    assert printed - set(entries) == set()
    assert all(e.meaning and e.latex for e in entries.values()), [e.name for e in entries.values() if not e.meaning]
    assert {"eta", "P"} <= set(entries)


def test_meanings_come_from_the_notation_table(monkeypatch):
    entries = {e.name: e for e in latex.glossary(system("mlp_mup_relu"))}
    for name in set(entries) & set(NOTATION):
        assert entries[name].meaning == NOTATION[name][1], name
    monkeypatch.setitem(NOTATION, "Phi", (r"\Phi", "a meaning changed in dmftc.notation", ""))
    assert "a meaning changed in dmftc.notation" in system("mlp_mup_relu").latex(standalone=True)


def test_the_glossary_shows_each_symbol_with_its_indices_and_positions():
    entries = {e.name: e for e in latex.glossary(system("mlp_mup_relu"))}
    assert entries["h"].latex == r"h^{\ell}_{\mu}(t)" and entries["h"].positions == (1, 2)
    assert entries["Phi"].latex == r"\Phi^{\ell}_{\mu\nu}(t,s)" and entries["A"].positions == (1,)
    assert entries["Delta"].latex == r"\Delta_{\mu}(t)" and entries["Delta"].positions == ()
    assert entries["gamma0"].latex == r"\gamma_0"
    lazy = {e.name: e for e in latex.glossary(system("mlp_ntk_relu"))}
    assert lazy["f"].latex == r"f_{\mu}(t)"           # written f(t + 1) in the output dynamics


@pytest.mark.parametrize("name", SPECS)
def test_every_equation_carries_the_ranges_of_its_free_indices(name):
    sysm = system(name)
    rows = _rows(sysm.latex(standalone=True))
    top = "P S - 1" if sysm.tokens else "P - 1"
    items = [(s.label, [s.field, s.covariance]) for s in sysm.sources] + [(e.label, [e.lhs]) for e in sysm.equations]
    for label, exprs in items:
        free = set().union(*(sympy.sympify(x).free_symbols for x in exprs))
        ranges = rows[label].rpartition(r"\qquad ")[2]
        for sym, end in ((latex.mu, top), (latex.nu, top), (latex.kappa, top), (latex.t, "T"), (latex.s, "T")):
            if sym in free:
                assert latex.to_latex(sym) in ranges and rf"0, \dots, {end}" in ranges, (label, rows[label])
        if not free & {latex.mu, latex.nu, latex.t, latex.s}:
            assert r"\qquad" not in rows[label] or r"\ell =" in ranges, (label, rows[label])


def test_a_shifted_index_stops_earlier():
    rows = _rows(system("mlp_ntk_relu").latex())
    assert rows["eq:lazy.f"].endswith(r"\qquad \mu = 0, \dots, P - 1,\quad t = 0, \dots, T - 1")


@pytest.mark.parametrize("name", SPECS)
def test_the_glossary_follows_the_equations_and_lists_every_entry(name):
    tex = system(name).latex(standalone=True)
    start = tex.index(r"\section*{Symbols}")
    assert tex.rindex(r"\end{align}") < start < tex.index(r"\end{document}")
    for e in latex.glossary(system(name)):
        assert f"${e.latex}$ & " in tex[start:], e.name
    assert r"\section*{Symbols}" not in system(name).latex()     # the fragment keeps equations only


def test_the_transformer_stream_numbering_is_explained():
    sysm = system("transformer_mup")
    text = latex.indices_text(sysm)
    stream = latex.glossary(sysm)
    stream = next(e for e in stream if e.name == "H").positions
    assert stream == tuple(range(1, len(stream) + 1))                      # the stream first
    assert set(sysm.stream_sites) <= set(stream)                           # the simulator's stream sites on it
    assert f"positions 1--{len(stream)} are the stream" in text
    assert "the LayerNorm outputs, 16--20" in text and "ports (21--24)" in text
    assert "P S - 1" in text and r"\mu = p S + j" in text
    heads = latex.indices_text(system("transformer_heads"))
    assert "positions 6--9, 11--14 live on a head site" in heads
    assert "hidden layer" in latex.indices_text(system("mlp_mup_relu"))
    assert "there are no other fields" in latex.indices_text(system("resnet_depth_mup"))


@pytest.mark.parametrize("name", SPECS)
def test_the_document_is_balanced_and_its_inline_math_closed(name):
    tex = system(name).latex(standalone=True)
    assert balanced(tex)
    glossary = tex[tex.index(r"\section*{Symbols}"):]
    for line in glossary.splitlines():
        assert len(re.findall(r"(?<!\\)\$", line)) % 2 == 0, line


def test_positions_print_as_runs():
    assert latex.format_positions((18, 1, 2, 3, 5, 16, 17)) == "1--3, 5, 16--18"
    assert latex.format_positions((1, 2)) == "1, 2" and latex.format_positions(()) == ""


def test_plain_meanings_print_as_text_with_their_formulas_as_math():
    assert latex.prose_latex("feature kernel <phi(h(t)) phi(h(s))>") == \
        r"feature kernel $\langle \phi (h(t)) \phi (h(s)) \rangle$"
    assert latex.prose_latex("covariance Phi^{ell-1}") == r"covariance $\Phi ^{\ell -1}$"
    assert latex.prose_latex("scaled by N^-alpha_A; 50% & x_y") == r"scaled by $N^{-\alpha_A}$; 50\% \& x\_y"


def test_docs_symbols_names_every_symbol_the_examples_print():
    page = (ROOT / "docs" / "symbols.md").read_text(encoding="utf-8")
    missing = sorted({e.name for name in SPECS for e in latex.glossary(system(name))
                      if f"`{e.name}`" not in page})
    assert not missing, f"docs/symbols.md lacks {missing}"
