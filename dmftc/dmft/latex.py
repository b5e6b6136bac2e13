"""LaTeX of an EquationSystem in the paper's notation (Bordelon & Pehlevan 2022; BCP 2024).

Fields print as h^{\\ell}_{\\mu}(t), kernels as \\Phi^{\\ell}_{\\mu\\nu}(t,s), expectations as
angle brackets over the single-site process, responses as partial derivatives. Each
equation carries \\label{<label>}, the label the generated code cites.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sympy.printing.latex import LatexPrinter

if TYPE_CHECKING:  # the printer needs only the objects' fields, not the module
    from .system import EquationSystem, SourceLaw

_BASES = {"H": "H", "h": "h", "z": "z", "g": "g", "u": "u", "r": "r", "Phi": r"\Phi", "G": "G", "A": "A", "B": "B",
          "Delta": r"\Delta", "f": "f", "y": "y", "Phi0": r"\Phi^{0}", "Loss": r"\mathcal{L}",
          "Sigma": r"\Sigma", "PhiK": r"\Phi", "PhiD": r"\dot{\Phi}", "GK": "G", "K": "K", "Sigmaf": r"\Sigma^{f}"}
_TWO_TIME = ("Phi", "G", "H", "A", "B")
_FIELDS = ("h", "z", "g", "u", "r")


class DmftLatexPrinter(LatexPrinter):
    """LaTeX with the DMFT notation for Indexed fields, kernels and the E/Response functions."""

    def _print_Indexed(self, expr):
        b, idx = expr.base.name, [self._print(i) for i in expr.indices]
        sym = _BASES.get(b, b)
        if b in _FIELDS:
            if len(idx) == 1:
                return f"{sym}^{{{idx[0]}}}"
            time = f"({idx[2]})" if len(idx) > 2 else ""
            return f"{sym}^{{{idx[0]}}}_{{{idx[1]}}}{time}"
        if b in _TWO_TIME:
            return f"{sym}^{{{idx[0]}}}_{{{idx[1]}{idx[2]}}}({idx[3]},{idx[4]})"
        if b in ("Sigma", "PhiK", "PhiD", "GK"):
            return f"{sym}^{{{idx[0]}}}_{{{idx[1]}{idx[2]}}}"
        if b in ("Phi0", "K", "Sigmaf"):
            return f"{sym}_{{{idx[0]}{idx[1]}}}"
        if b in ("f", "Delta"):
            return f"{sym}_{{{idx[0]}}}({idx[1]})"
        if b == "Loss":
            return f"{sym}({idx[0]})"
        return f"{sym}_{{{','.join(idx)}}}"

    def _print_Function(self, expr, exp=None):
        name = expr.func.__name__
        args = [self._print(a) for a in expr.args]
        table = {
            "phi": lambda: rf"\phi\left({args[0]}\right)",
            "dphi": lambda: rf"\phi'\left({args[0]}\right)",
            "E": lambda: rf"\left\langle {args[0]} \right\rangle",
            "Response": lambda: rf"\frac{{\partial {args[0]}}}{{\partial {args[1]}}}",
            "GaussPhi": lambda: rf"\left\langle \phi(u)\phi(u)^\top \right\rangle_{{u \sim \mathcal{{N}}(0, {args[0]})}}",
            "GaussDPhi": lambda: rf"\left\langle \phi'(u)\phi'(u)^\top \right\rangle_{{u \sim \mathcal{{N}}(0, {args[0]})}}",
        }
        if name in table:
            return table[name]()
        return super()._print_Function(expr, exp)

    def _print_Symbol(self, expr, style="plain"):
        special = {"dtau": r"\mathrm{d}\tau", "gamma0": r"\gamma_0", "eta": r"\eta", "ell": r"\ell", "beta0": r"\beta_0",
                   "alpha_A": r"\alpha_A", "alpha_L": r"\alpha_L"}
        return special.get(expr.name, super()._print_Symbol(expr, style))


def to_latex(expr) -> str:
    """One expression in the DMFT notation."""
    return DmftLatexPrinter({"mul_symbol": None}).doprint(expr)


def _range(layers) -> str:
    if layers is None:
        return ""
    lo, hi = layers
    if lo == hi:
        return ""
    return rf"\qquad \ell = {to_latex(lo)}, \dots, {to_latex(hi)}"


def _source_line(src: SourceLaw) -> str:
    law = {"scalar": r"\mathcal{N}(0, 1)", "static": rf"\mathcal{{N}}\big(0, {to_latex(src.coefficient * src.covariance)}\big)",
           "dynamic": rf"\mathcal{{GP}}\big(0, {to_latex(src.coefficient * src.covariance)}\big)"}[src.structure]
    return rf"{to_latex(src.field)} \sim {law}{_range(src.layers)} \label{{{src.label}}}"


def system_latex(system: EquationSystem, standalone: bool = False) -> str:
    """All equations as a LaTeX fragment (align environments), or a compilable document."""
    parts = [rf"% DMFT of {system.name}: {system.regime} limit {', '.join(system.limit)} -> infinity, "
             rf"method {system.method}"]
    if system.sources:
        parts += [r"\paragraph{Gaussian sources}", r"\begin{align}",
                  r" \\ ".join(_source_line(s) for s in system.sources), r"\end{align}"]
    groups = {}
    for eq in system.equations:
        groups.setdefault(eq.kind, []).append(eq)
    titles = {"field": "Single-site fields", "kernel": "Order parameters (kernels)",
              "response": "Response functions", "output": "Output", "error": "Error signal", "loss": "Loss",
              "lazy": "Kernels of the lazy limit", "lazy_output": "Output dynamics"}
    for kind, eqs in groups.items():
        lines = [rf"{to_latex(e.lhs)} &= {to_latex(e.rhs)}{_range(e.layers)} \label{{{e.label}}}" for e in eqs]
        parts += [rf"\paragraph{{{titles.get(kind, kind)}}}", r"\begin{align}", " \\\\\n".join(lines), r"\end{align}"]
    if system.notes:
        parts += [r"\paragraph{Notes}", " ".join(_escape(n) for n in system.notes)]
    body = "\n".join(parts) + "\n"
    if not standalone:
        return body
    return ("\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n\\usepackage[margin=2cm]{geometry}\n"
            "\\allowdisplaybreaks\n\\begin{document}\n"
            f"\\section*{{DMFT equations: {_escape(system.name)}}}\n{body}\\end{{document}}\n")


def _escape(text: str) -> str:
    return text.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
