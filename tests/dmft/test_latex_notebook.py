"""The equations display in a notebook (issue 27, item 4): `EquationSystem._repr_latex_` is math MathJax
renders, checked by rendering a notebook that holds it to HTML with nbconvert (no kernel needed).
"""

from __future__ import annotations

import functools
import html
import re
from pathlib import Path

import pytest

from dmftc.dmft.derive import derive
from dmftc.graph.build import build_graph
from dmftc.scaling.parameterization import resolve_parameterization
from dmftc.spec import load

from .latex_checks import balanced

nbformat = pytest.importorskip("nbformat")
nbconvert = pytest.importorskip("nbconvert")

ROOT = Path(__file__).resolve().parents[2]
SPECS = ("mlp_mup_relu", "mlp_ntk_relu", "resnet_depth_mup", "transformer_heads")
#: LaTeX that belongs to a document, not to a notebook's math
DOCUMENT_ONLY = (r"\paragraph", r"\section", r"\documentclass", r"\usepackage", r"\begin{document}", r"\label",
                 r"\nonumber", r"\begin{align}")
#: every control sequence the display may use: MathJax's TeX input (base and AMS) knows each one
MATHJAX = {"begin", "end", "textbf", "mathtt", "mathcal", "mathbb", "mathrm", "operatorname", "frac", "sqrt",
           "partial", "left", "right", "langle", "rangle", "sum", "substack", "leq", "qquad", "quad", "dots",
           "sim", "big", "to", "infty", "in", "top", "tilde", "bar", "dot", "_", "$",
           "alpha", "beta", "gamma", "eta", "mu", "nu", "kappa", "tau", "ell", "phi", "sigma", "Phi", "Delta",
           "Sigma"}


@functools.cache
def display(name: str) -> str:
    spec = load(ROOT / "specs" / f"{name}.yaml")
    graph = build_graph(spec)
    return derive(spec, graph, resolve_parameterization(spec, graph))._repr_latex_()


def _notebook_html(latex: str) -> str:
    """A one-cell notebook whose output is `latex` as text/latex, rendered to HTML by nbconvert."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("prog.equations")
    cell.outputs = [nbformat.v4.new_output("execute_result", execution_count=1,
                                           data={"text/latex": latex, "text/plain": "EquationSystem(...)"})]
    cell.execution_count = 1
    nb.cells.append(cell)
    nbformat.validate(nb)
    body, _ = nbconvert.HTMLExporter().from_notebook_node(nb)
    return body


def _math_blocks(latex: str) -> list[str]:
    return re.findall(r"\$\$(.*?)\$\$", latex, re.S)


@pytest.mark.parametrize("name", SPECS)
def test_the_display_is_display_math_without_document_latex(name):
    latex = display(name)
    assert not [d for d in DOCUMENT_ONLY if d in latex]
    blocks = _math_blocks(latex)
    assert len(blocks) >= 3 and latex.count("$$") == 2 * len(blocks)
    assert all(balanced(b) for b in blocks)
    equations = [b for b in blocks if r"\begin{aligned}" in b]
    assert equations and all(b.strip().startswith(r"\begin{aligned}") and b.strip().endswith(r"\end{aligned}")
                             for b in equations)
    unknown = set(re.findall(r"\\([A-Za-z]+|[_$])", "".join(blocks))) - MATHJAX
    assert not unknown, f"control sequences MathJax may not know: {sorted(unknown)}"


@pytest.mark.parametrize("name", ("mlp_mup_relu", "transformer_heads"))
def test_a_notebook_renders_the_equations_through_mathjax(name):
    latex = display(name)
    page = _notebook_html(latex)
    assert re.search(r"displayMath:\s*\[\s*\[\s*'\$\$'\s*,\s*'\$\$'\s*\]", page)    # MathJax typesets $$...$$
    rendered = re.findall(r'<div class="[^"]*jp-RenderedLatex[^"]*"[^>]*>\n?(.*?)</div>', page, re.S)
    assert len(rendered) == 1 and html.unescape(rendered[0]).strip() == latex.strip()
    assert r"\paragraph" not in page and r"\begin{aligned}" in html.unescape(page)
    assert r"h^{1}_{\mu}(t) &= " in html.unescape(rendered[0])
