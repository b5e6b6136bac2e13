"""LaTeX of an EquationSystem in the paper's notation (Bordelon & Pehlevan 2022; BCP 2024).

Fields print as h^{\\ell}_{\\mu}(t), kernels as \\Phi^{\\ell}_{\\mu\\nu}(t,s), expectations as
angle brackets over the single-site process, responses as partial derivatives. Each
equation carries \\label{<label>}, the label the generated code cites.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sympy.printing.latex import LatexPrinter

from ..notation import as_expr

if TYPE_CHECKING:  # the printer needs only the objects' fields, not the module
    from .system import EquationSystem, SourceLaw

_BASES = {"H": "H", "h": "h", "z": "z", "g": "g", "u": "u", "r": "r", "Phi": r"\Phi", "G": "G", "A": "A", "B": "B",
          "Delta": r"\Delta", "f": "f", "y": "y", "Phi0": r"\Phi^{0}", "Loss": r"\mathcal{L}",
          "Sigma": r"\Sigma", "PhiK": r"\Phi", "PhiD": r"\dot{\Phi}", "GK": "G", "K": "K", "Sigmaf": r"\Sigma^{f}"}
_TWO_TIME = ("Phi", "G", "H", "A", "B")
_FIELDS = ("h", "z", "g", "u", "r")
_PLAIN = frozenset(_BASES)      # the MLP vocabulary, printed as it always was
# the transformer's vocabulary (dmftc.notation): stream, head and MLP sites, weight-role sources/responses
_BASES.update({"hb": r"\bar{h}", "gb": r"\bar{g}", "k": "k", "q": "q", "v": "v", "o": "o", "x": "x",
               "zx": "z^{x}", "gk": "g^{k}", "gq": "g^{q}", "gv": "g^{v}", "go": "g^{o}", "gx": "g^{x}",
               "h0": "h^{(0)}", "g0": "g^{(0)}", "o0": "o^{(0)}", "gk0": "g^{k(0)}", "gq0": "g^{q(0)}",
               "gv0": "g^{v(0)}", "Phio": r"\Phi^{o}", "H0": "H^{(0)}", "Phix": r"\Phi^{x}", "Gk": "G^{k}", "Gq": "G^{q}",
               "Gv": "G^{v}", "Gx": "G^{x}", "Lam": r"\mathcal{A}", "Sm": r"\sigma", "Mm": "M", "Dm": r"\mathcal{D}",
               "C": "C", "Lam0": r"\mathcal{A}^{(0)}", "Sm0": r"\sigma^{(0)}", "Mm0": "M^{(0)}",
               "Dm0": r"\mathcal{D}^{(0)}", "ftok": r"\tilde{f}", "F": "F", "Seq": r"\mathbb{1}^{\mathrm{seq}}"})
_BASES.update({f"{b}{role}": f"{b}_{{{role}}}" for b in "urAB" for role in ("K", "Q", "V", "O", "1", "2")})
_TWO_TIME += ("H0", "Phio", "Phix", "Gk", "Gq", "Gv", "Gx") + tuple(f"{b}{role}" for b in "AB" for role in "KQVO12")
_FIELDS += ("hb", "gb", "k", "q", "v", "o", "x", "zx", "gk", "gq", "gv", "go", "gx", "h0", "g0", "o0", "gk0",
            "gq0", "gv0") + tuple(f"{b}{role}" for b in "ur" for role in "KQVO12")
_ORDER = ("Lam", "Sm", "Mm", "Dm", "C", "Lam0", "Sm0", "Mm0", "Dm0", "Mln", "Vln", "Cg")
_BASES.update({"Mln": "m", "Vln": "v", "Cg": r"\bar{C}"})


class DmftLatexPrinter(LatexPrinter):
    """LaTeX with the DMFT notation for Indexed fields, kernels and the E/Response functions."""

    def _print_Indexed(self, expr):
        b, idx = expr.base.name, [self._print(i) for i in expr.indices]
        sym = _BASES.get(b, b)
        if b not in _PLAIN:
            sym = f"{{{sym}}}" if any(c in sym for c in "^_") else sym   # a decorated base takes more indices
        if b in _ORDER:
            return f"{sym}^{{{idx[0]}}}_{{{''.join(idx[1:-1])}}}({idx[-1]})"
        if b in ("ftok", "F"):
            return f"{sym}_{{{idx[0]}}}({idx[1]})"
        if b == "Seq":
            return f"{sym}_{{{idx[0]}{idx[1]}}}"
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
            "HeadMean": lambda: rf"\left\langle {args[0]} \right\rangle_{{\mathrm{{head}}}}",
            "Softmax": lambda: rf"\operatorname{{softmax}}_{{\nu \in \mathrm{{seq}}(\mu)}}\left({args[0]}\right)",
            "Response": lambda: rf"\frac{{\partial {args[0]}}}{{\partial {args[1]}}}",
            "GaussPhi": lambda: rf"\left\langle \phi(u)\phi(u)^\top \right\rangle_{{u \sim \mathcal{{N}}(0, {args[0]})}}",
            "GaussDPhi": lambda: rf"\left\langle \phi'(u)\phi'(u)^\top \right\rangle_{{u \sim \mathcal{{N}}(0, {args[0]})}}",
        }
        if name in table:
            return table[name]()
        return super()._print_Function(expr, exp)

    def _print_Symbol(self, expr, style="plain"):
        special = {"dtau": r"\mathrm{d}\tau", "gamma0": r"\gamma_0", "eta": r"\eta", "ell": r"\ell", "beta0": r"\beta_0",
                   "alpha_A": r"\alpha_A", "alpha_L": r"\alpha_L",
                   "kappa": r"\kappa"}
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


#: a right-hand side with more top-level terms than this is broken over lines, TERMS_PER_LINE a line
MAX_TERMS, TERMS_PER_LINE = 3, 2


def _equation_lines(e) -> str:
    """One align row `lhs &= rhs  (range) label`; a long sum continues on `&\\quad + ...` rows, numbered once."""
    rhs = as_expr(e.rhs)
    terms = rhs.as_ordered_terms() if rhs.is_Add and len(rhs.args) > MAX_TERMS else [rhs]
    chunks = [terms[i:i + TERMS_PER_LINE] for i in range(0, len(terms), TERMS_PER_LINE)]
    rows = [_join_terms(c, first=(i == 0)) for i, c in enumerate(chunks)]
    head = rf"{to_latex(e.lhs)} &= {rows[0]}"
    tail = [rf"&\quad {r}" for r in rows[1:]]
    return " \\nonumber \\\\\n".join([head, *tail]) + rf"{_range(e.layers)} \label{{{e.label}}}"


def _join_terms(terms, first: bool) -> str:
    out = ""
    for i, t in enumerate(terms):
        text = to_latex(t)
        if text.startswith("-"):
            out += f" - {text[1:].lstrip()}" if out or not first else text
        else:
            out += f" + {text}" if out or not first else text
    return out.strip()


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
              "lazy": "Kernels of the lazy limit", "lazy_output": "Output dynamics",
              "order": "Equal-time order parameters (attention logits and softmax, LayerNorm projection)",
              "twin": "Control variates: the same draws at gamma0 = 0",
              "twin_kernel": "Exact kernels of the control variates"}
    for kind, eqs in groups.items():
        lines = [_equation_lines(e) for e in eqs]
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
