"""LaTeX of an EquationSystem in the paper's notation (Bordelon & Pehlevan 2022; BCP 2024).

Fields print as h^{\\ell}_{\\mu}(t), kernels as \\Phi^{\\ell}_{\\mu\\nu}(t,s), expectations as
angle brackets over the single-site process, responses as partial derivatives. Each
equation carries the ranges of its free indices and \\label{<label>}, the label the generated
code cites. The standalone document ends with the glossary of every symbol it prints
(`glossary`: meanings from `dmftc.notation.NOTATION` where it has them, from `_MEANINGS` here
otherwise; docs/symbols.md). `system_mathjax` is the same system as display-math blocks a
notebook renders (MathJax: no \\paragraph, no \\label).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sympy
from sympy.printing.latex import LatexPrinter

from ..notation import NOTATION, SIZE_MEANINGS, as_expr, ell, kappa, mu, nu, s, size_symbol, t

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
# the training setup (dmftc.training): the optimizer's filter and decay factor, error and loss weights, losses
# (the filter Kappa, decay factor adec and error weights Omega print as dmftc.notation.NOTATION writes them)
_BASES.update({"wtrain": r"w^{\mathrm{train}}", "wtest": r"w^{\mathrm{test}}",
               "LossTest": r"\mathcal{L}^{\mathrm{test}}", "LossBatch": r"\mathcal{L}^{\mathrm{batch}}"})
_LOSSES = ("Loss", "LossTest", "LossBatch")


class DmftLatexPrinter(LatexPrinter):
    """LaTeX with the DMFT notation for Indexed fields, kernels and the E/Response functions."""

    def _print_Indexed(self, expr):
        b, idx = expr.base.name, [self._print(i) for i in expr.indices]
        sym = _BASES.get(b) or NOTATION.get(b, (b,))[0]
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
        if b in _LOSSES or b == "adec":
            return f"{sym}({idx[0]})"
        if b == "Kappa":
            return f"{sym}({idx[0]},{idx[1]})"
        if b == "Omega":
            return f"{sym}_{{{idx[1]}}}({idx[0]})"
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
            "Sigmoid": lambda: rf"\sigma\left({args[0]}\right)",                 # 1 / (1 + e^-x)
            "Softplus": lambda: rf"\log\left(1 + e^{{{args[0]}}}\right)",
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


# ------------------------------------------------------------------ index ranges
#: sample (or token) indices and time indices, in the order their ranges are printed
SAMPLE_INDICES, TIME_INDICES = (mu, nu, kappa), (t, s)


def _layer_range(layers) -> str | None:
    """`\\ell = a, \\dots, b` for an equation written for several layers, else None."""
    if layers is None or layers[0] == layers[1]:
        return None
    return rf"\ell = {to_latex(layers[0])}, \dots, {to_latex(layers[1])}"


def index_ranges(exprs, tokens: bool, layers=None) -> str:
    """The ranges of the free indices of `exprs` (and of ell, for an equation written for several
    layers) as an align row's suffix: `\\qquad \\mu, \\nu = 0, \\dots, P - 1,\\quad t, s = 0, \\dots, T`;
    "" when there is none. An index written shifted, f(t + 1), stops as much earlier (t up to T - 1)."""
    exprs = [as_expr(e) for e in exprs]
    free = set().union(*(e.free_symbols for e in exprs))
    shift = _shifts(exprs)
    parts = [_layer_range(layers)]
    for group, top in ((SAMPLE_INDICES, size_symbol("P") * (size_symbol("S") if tokens else 1) - 1),
                       (TIME_INDICES, sympy.Symbol("T"))):
        ends: dict[str, list[str]] = {}
        for i in group:
            if i in free:
                ends.setdefault(to_latex(top - shift.get(i, 0)), []).append(to_latex(i))
        parts += [rf"{', '.join(names)} = 0, \dots, {end}" for end, names in ends.items()]
    parts = [p for p in parts if p]
    return r"\qquad " + r",\quad ".join(parts) if parts else ""


def _shifts(exprs) -> dict:
    """Index symbol -> the largest k it is written with as `i + k` (k > 0) in an Indexed object of `exprs`."""
    out: dict = {}
    for e in exprs:
        for x in e.atoms(sympy.Indexed):
            for i in x.indices:
                for sym in as_expr(i).free_symbols & set(SAMPLE_INDICES + TIME_INDICES):
                    k = as_expr(i) - sym
                    if k.is_Integer and k > 0:
                        out[sym] = max(out.get(sym, 0), int(k))
    return out


# ------------------------------------------------------------------ rows
def _source_line(src: SourceLaw, tokens: bool) -> str:
    """`u &\\sim law  ranges` (no label)."""
    law = {"scalar": r"\mathcal{N}(0, 1)", "static": rf"\mathcal{{N}}\big(0, {to_latex(src.coefficient * src.covariance)}\big)",
           "dynamic": rf"\mathcal{{GP}}\big(0, {to_latex(src.coefficient * src.covariance)}\big)"}[src.structure]
    ranges = index_ranges([src.field, src.covariance], tokens, src.layers)
    return rf"{to_latex(src.field)} &\sim {law}{ranges}"


#: a right-hand side with more top-level terms than this is broken over lines, TERMS_PER_LINE a line
MAX_TERMS, TERMS_PER_LINE = 3, 2


def _equation_rows(e, tokens: bool) -> list[str]:
    """`lhs &= rhs` and its continuation rows `&\\quad + ...`, the index ranges on the last (no label)."""
    rhs = as_expr(e.rhs)
    terms = rhs.as_ordered_terms() if rhs.is_Add and len(rhs.args) > MAX_TERMS else [rhs]
    chunks = [terms[i:i + TERMS_PER_LINE] for i in range(0, len(terms), TERMS_PER_LINE)]
    rows = [_join_terms(c, first=(i == 0)) for i, c in enumerate(chunks)]
    out = [rf"{to_latex(e.lhs)} &= {rows[0]}", *(rf"&\quad {r}" for r in rows[1:])]
    out[-1] += index_ranges([e.lhs], tokens, e.layers)
    return out


def _join_terms(terms, first: bool) -> str:
    out = ""
    for term in terms:
        text = to_latex(term)
        if text.startswith("-"):
            out += f" - {text[1:].lstrip()}" if out or not first else text
        else:
            out += f" + {text}" if out or not first else text
    return out.strip()


def _numbered(rows: list[str], label: str) -> str:
    """Rows of one equation for an align environment: numbered once, on the last row, with its label."""
    return " \\nonumber \\\\\n".join(rows) + rf" \label{{{label}}}"


_TITLES = {"field": "Single-site fields", "kernel": "Order parameters (kernels)",
           "response": "Response functions", "output": "Output", "error": "Error signal", "loss": "Loss",
           "lazy": "Kernels of the lazy limit", "lazy_output": "Output dynamics",
           "order": "Equal-time order parameters (attention logits and softmax, LayerNorm projection)",
           "twin": "Control variates: the same draws at gamma0 = 0",
           "twin_kernel": "Exact kernels of the control variates"}


def _groups(system: EquationSystem) -> list[tuple[str, list[tuple[list[str], str]]]]:
    """(title, [(rows, label), ...]) per group: the sources, then the equations by kind in first-seen order."""
    tokens = system.tokens
    groups = []
    if system.sources:
        groups.append(("Gaussian sources", [([_source_line(s, tokens)], s.label) for s in system.sources]))
    by_kind: dict[str, list] = {}
    for eq in system.equations:
        by_kind.setdefault(eq.kind, []).append((_equation_rows(eq, tokens), eq.label))
    groups += [(_TITLES.get(kind, kind), items) for kind, items in by_kind.items()]
    return groups


# ------------------------------------------------------------------ documents
def system_latex(system: EquationSystem, standalone: bool = False) -> str:
    """All equations as a LaTeX fragment (align environments), or a compilable document that ends with
    the glossary of its symbols."""
    parts = [rf"% DMFT of {system.name}: {system.regime} limit {', '.join(system.limit)} -> infinity, "
             rf"method {system.method}"]
    for title, items in _groups(system):
        parts += [rf"\paragraph{{{title}}}", r"\begin{align}", " \\\\\n".join(_numbered(r, lab) for r, lab in items),
                  r"\end{align}"]
    if system.notes:
        parts += [r"\paragraph{Notes}", " ".join(_escape(n) for n in system.notes)]
    body = "\n".join(parts) + "\n"
    if not standalone:
        return body
    return ("\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n\\usepackage{longtable}\n"
            "\\usepackage[margin=2cm]{geometry}\n\\allowdisplaybreaks\n\\begin{document}\n"
            f"\\section*{{DMFT equations: {_escape(system.name)}}}\n{body}{glossary_latex(system)}\\end{{document}}\n")


def system_mathjax(system: EquationSystem) -> str:
    """The equations as display-math blocks a notebook renders (MathJax): per group a bold title and one
    `$$\\begin{aligned}...\\end{aligned}$$`, then the notes as plain lines; no \\paragraph, \\label or
    \\nonumber, no preamble."""
    name = system.name.replace("_", r"\_")
    blocks = [rf"$$\textbf{{DMFT of }}\mathtt{{{name}}}\textbf{{: {system.regime.replace('_', ' ')} limit }}"
              rf"{', '.join(system.limit)} \to \infty$$"]
    for title, items in _groups(system):
        rows = " \\\\\n".join(" \\\\\n".join(r) for r, _ in items)
        blocks += [rf"$$\textbf{{{title}}}$$", f"$$\\begin{{aligned}}\n{rows}\n\\end{{aligned}}$$"]
    blocks += [note.replace("$", r"\$") for note in system.notes]
    return "\n".join(blocks) + "\n"


def _escape(text: str) -> str:
    return text.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")


def _escape_text(text: str) -> str:
    """Plain ASCII prose (NOTATION's meanings: `<phi(h) phi(h)>`, `x . x' / D`) for LaTeX text mode."""
    table = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#",
             "$": r"\$", "^": r"\^{}", "~": r"\~{}", "<": r"$\langle$", ">": r"$\rangle$", "|": r"$|$"}
    return "".join(table.get(c, c) for c in text)


#: names in plain-text meanings that print as symbols
_GREEK = {"phi": r"\phi", "Phi": r"\Phi", "gamma0": r"\gamma_0", "ell": r"\ell", "mu": r"\mu", "nu": r"\nu",
          "eta": r"\eta", "Delta": r"\Delta", "Sigma": r"\Sigma", "sigma": r"\sigma", "beta0": r"\beta_0",
          "alpha_L": r"\alpha_L", "alpha_A": r"\alpha_A", "kappa": r"\kappa", "tau": r"\tau"}
_WORD = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _GREEK), key=len, reverse=True)) + r")\b")
#: spans of a plain-text meaning that are mathematics: <...> expectations, powers X^{...} or X^-a
_MATH = re.compile(r"<[^<>]*>|\b[A-Za-z]\w*\^(?:\{[^{}]*\}|-?\w+)")


def _math(span: str) -> str:
    """A plain-text formula as LaTeX math: Greek names as symbols, <...> as angle brackets, X^-a as X^{-a}."""
    inner = _WORD.sub(lambda m: _GREEK[m.group(1)] + " ", span)
    inner = re.sub(r"\^(-?[\\\w]+)", r"^{\1}", inner)
    if inner.startswith("<"):
        inner = rf"\langle {inner[1:-1].strip()} \rangle"
    return f"${inner.strip()}$"


def prose_latex(text: str) -> str:
    """Plain-text prose (NOTATION's meanings: `<phi(h(t)) phi(h(s))>`, `covariance Phi^{ell-1}`) for LaTeX
    text mode: formulas and Greek names as math, every other special character escaped."""
    out, last = [], 0
    for m in _MATH.finditer(text):
        out += [_greek_words(_escape_text(text[last:m.start()])), _math(m.group())]
        last = m.end()
    return "".join(out + [_greek_words(_escape_text(text[last:]))])


def _greek_words(text: str) -> str:
    """Greek names in escaped prose as inline math (an escaped `alpha_L` matched back)."""
    return _WORD.sub(lambda w: f"${_GREEK[w.group(1)]}$", text.replace(r"alpha\_", "alpha_"))


# ------------------------------------------------------------------ glossary
@dataclass(frozen=True)
class GlossaryEntry:
    """One printed symbol: its code name, LaTeX as printed (with its indices), meaning in words, and the
    positions ell where it exists in this system (() when it has no position index)."""

    name: str
    latex: str
    meaning: str
    positions: tuple[int, ...] = ()


#: meanings of the printed symbols `NOTATION` has no entry for (NOTATION's meaning wins where it has one)
_MEANINGS = {
    "H": "residual-stream kernel <h(t) h(s)> at a stream position",
    "H0": "exact kernel of the gamma0 = 0 stream h0 (a sum of independent Gaussian sources)",
    "h0": "the field at gamma0 = 0: the same draws without response or update terms (a control variate)",
    "g0": "the backward field at gamma0 = 0 (a control variate)",
    "y": "target of sample mu (in a token model: its sequence's target, on each of its tokens)",
    "Loss": "training loss at step t: half the squared error, averaged over the training points",
    "LossTest": "held-out loss at step t",
    "LossBatch": "loss on step t's minibatch",
    "wtrain": "weight of point mu in the training loss",
    "wtest": "weight of point mu in the held-out loss",
    "Sigma": "lazy limit: preactivation covariance at initialization (NNGP kernel) of layer ell",
    "PhiK": "lazy limit: feature kernel <phi(u) phi(u)> of layer ell, u Gaussian with covariance Sigma",
    "PhiD": "lazy limit: derivative kernel <phi'(u) phi'(u)> of layer ell, u Gaussian with covariance Sigma",
    "GK": "lazy limit: gradient kernel of layer ell",
    "Sigmaf": "covariance of the output at initialization",
    "Mln": "LayerNorm: mean <e> of its input over the coordinates, at a token and step (indexed by the "
           "LayerNorm output's position)",
    "Vln": "LayerNorm: population second moment <e e> of its input",
    "C": "LayerNorm backward: the projection <g h> of the backward field on the normalised output",
    "Cg": "LayerNorm backward: the mean <g> of the backward field",
    "Lam": "attention logits of query token mu against key token nu of one sequence at step t (indexed by the "
           "attention output's position; keys and queries are fields h)",
    "Sm": "softmax of the logits over the tokens of mu's sequence",
    "Mm": "<g^o v>: the attention output's backward field against the values",
    "Dm": "the softmax Jacobian applied to M: the gradient of the logits",
    "Lam0": "the logits at gamma0 = 0 (control variate)",
    "Sm0": "the softmax at gamma0 = 0 (control variate)",
    "Mm0": "M at gamma0 = 0 (control variate)",
    "Dm0": "D at gamma0 = 0 (control variate)",
    "ftok": "one token's contribution to its sequence's output",
    "F": "the output of mu's sequence, seen at token mu",
    "Seq": "1 when tokens mu and nu belong to one sequence, 0 otherwise",
    "hb": "LayerNorm output", "gb": "backward field of a LayerNorm output",
    "k": "keys", "q": "queries", "v": "values", "o": "attention output",
    "gk": "backward field of the keys", "gq": "backward field of the queries", "gv": "backward field of the values",
    "go": "backward field of the attention output", "x": "hidden preactivation of an MLP branch",
    "zx": "backward field of an MLP branch before the activation derivative",
    "gx": "backward field of an MLP branch's hidden preactivation",
    "o0": "attention output at gamma0 = 0 (control variate)", "gk0": "gk at gamma0 = 0 (control variate)",
    "gq0": "gq at gamma0 = 0 (control variate)", "gv0": "gv at gamma0 = 0 (control variate)",
    "Phio": "kernel of the attention output", "Phix": "kernel of an MLP branch's hidden activation",
    "Gk": "gradient kernel of the keys", "Gq": "gradient kernel of the queries", "Gv": "gradient kernel of the values",
    "Gx": "gradient kernel of an MLP branch's hidden preactivation",
    # functions
    "phi": "the activation function", "dphi": "the activation's derivative",
    "E": "expectation over the single-site process: over its Gaussian sources, the random initial weights",
    "Response": "derivative of a field with respect to a source (a response)",
    "HeadMean": "average over one head's N coordinates (a random variable per head as H -> infinity)",
    "Softmax": "softmax over the tokens of one sequence",
    "GaussPhi": "Gaussian expectation <phi(u) phi(u)> over u with mean 0 and covariance Sigma",
    "GaussDPhi": "Gaussian expectation <phi'(u) phi'(u)> over u with mean 0 and covariance Sigma",
    # hyperparameters and sizes (SIZE_MEANINGS covers the others)
    "eta": "learning rate (training.lr)",
    "gamma0": "richness of feature learning: how far features move (muP)",
    "beta0": "residual branch multiplier: a branch is scaled by beta0 / L^alpha_L",
    "alpha_L": "depth exponent of the residual branch scale",
    "alpha_A": "attention logit scale exponent: logits scaled by N^-alpha_A",
    "dtau": "step 1/K of the layer-time grid of the depth limit",
}
#: meanings where positions are not layers (a residual stream: dmftc.dmft.walk numbers every field it keeps)
_AT_POSITIONS = {
    "h": "the forward field at position ell: the stream, or a field inside a block (keys, queries, values, "
         "attention outputs, hidden layers, LayerNorm outputs; see the indices above)",
    "u": "forward Gaussian source of the dense layer whose output is position ell; its covariance, printed with "
         "it, is the kernel of what that layer reads",
    "r": "backward Gaussian source into position ell from the dense layer (or readout) reading it; its "
         "covariance, printed with it, is that layer's gradient kernel",
}
#: roles of a transformer block's dense weights (dmftc.notation.weight_bases), in words
_ROLES = {"K": "key", "Q": "query", "V": "value", "O": "output", "1": "first MLP", "2": "second MLP"}
#: printed forms of the undefined functions (arguments as dots)
_FUNCTIONS = {"phi": r"\phi(\cdot)", "dphi": r"\phi'(\cdot)", "E": r"\langle \cdot \rangle",
              "Response": r"\partial \cdot / \partial \cdot", "HeadMean": r"\langle \cdot \rangle_{\mathrm{head}}",
              "Softmax": r"\operatorname{softmax}", "GaussPhi": r"\langle \phi(u)\phi(u)^\top \rangle",
              "GaussDPhi": r"\langle \phi'(u)\phi'(u)^\top \rangle"}
#: glossary order: fields and sources, kernels, responses, outputs, then the rest alphabetically
_ORDER_NAMES = ("h", "z", "g", "u", "r", "h0", "g0", "Phi", "G", "H", "H0", "A", "B", "Sigma", "PhiK", "PhiD", "GK",
                "K", "Sigmaf", "Phi0", "Mln", "Vln", "C", "Cg", "Lam", "Sm", "Mm", "Dm", "Lam0", "Sm0", "Mm0", "Dm0",
                "f", "ftok", "F", "Seq", "y", "Delta", "Loss", "LossBatch", "LossTest", "Kappa", "adec", "Omega",
                "wtrain", "wtest", "phi", "dphi", "E", "Response", "HeadMean", "Softmax", "GaussPhi", "GaussDPhi")
_NOT_INDEX = frozenset(SAMPLE_INDICES + TIME_INDICES + (ell,))


def meaning(name: str) -> str:
    """What a printed symbol is, in words: `NOTATION`'s meaning, else this module's, else a size's or a
    weight role's; "" when none is known."""
    if name in NOTATION:
        return NOTATION[name][1]
    if name in _MEANINGS:
        return _MEANINGS[name]
    if name in SIZE_MEANINGS:
        return SIZE_MEANINGS[name]
    m = re.fullmatch(r"([urAB])([KQVO12])", name)
    if m:
        return f"{meaning(m.group(1))}, of the {_ROLES[m.group(2)]} weights"
    m = re.fullmatch(r"(d?phi)_(\w+)", name)
    if m:
        return f"{meaning(m.group(1))} ({m.group(2)})"
    return ""


def _printed_parts(expr):
    """Indexed objects, undefined functions and plain symbols as the printer shows them (the Gaussian maps
    print their covariance argument only)."""
    expr = as_expr(expr)
    if isinstance(expr, sympy.Indexed):
        yield expr
        for i in expr.indices:
            yield from _printed_parts(i)
        return
    if isinstance(expr, sympy.Symbol):
        yield expr
        return
    args = expr.args
    if isinstance(expr, sympy.core.function.AppliedUndef):
        yield expr
        args = args[:1] if expr.func.__name__ in ("GaussPhi", "GaussDPhi") else args
    for a in args:
        yield from _printed_parts(a)


def _occurrences(system: EquationSystem):
    """(expression, layers, on_lhs) for every printed expression of the system."""
    for src in system.sources:
        yield src.field, src.layers, True
        yield src.coefficient * src.covariance, src.layers, False
    for e in system.equations:
        yield e.lhs, e.layers, True
        yield e.rhs, e.layers, False


def _position_values(index, layers) -> tuple[int, ...]:
    """The positions an Indexed object's first index takes: a number, or an expression in ell over the
    equation's layers; () when it is a sample or time index."""
    index = as_expr(index)
    if index.free_symbols & (_NOT_INDEX - {ell}):
        return ()
    if index.is_Integer:
        return (int(index),)
    if ell in index.free_symbols and layers is not None:
        lo, hi = (int(x) for x in layers)
        return tuple(int(index.subs(ell, v)) for v in range(lo, hi + 1))
    return ()


def _template(x: sympy.Indexed) -> sympy.Indexed:
    """The Indexed object with its position index (if any) replaced by ell and shifted indices, t + 1,
    by their index symbol."""
    indices = [_unshifted(i) for i in x.indices]
    if not as_expr(indices[0]).free_symbols & (_NOT_INDEX - {ell}):
        indices[0] = ell
    return x.base[tuple(indices)]


def _unshifted(index):
    """`t` for `t + k`; any other index as it is."""
    syms = as_expr(index).free_symbols & set(SAMPLE_INDICES + TIME_INDICES)
    return next(iter(syms)) if len(syms) == 1 and (as_expr(index) - next(iter(syms))).is_Integer else index


def glossary(system: EquationSystem) -> tuple[GlossaryEntry, ...]:
    """Every symbol the system's equations print, with its meaning and positions, in a fixed order."""
    indexed: dict[str, list] = {}
    positions: dict[str, set[int]] = {}
    functions: dict[str, sympy.Basic] = {}
    symbols: dict[str, sympy.Symbol] = {}
    for expr, layers, on_lhs in _occurrences(system):
        for part in _printed_parts(expr):
            if isinstance(part, sympy.Indexed):
                name = part.base.name
                indexed.setdefault(name, []).append((not on_lhs, -len(part.indices), str(part), part))
                positions.setdefault(name, set()).update(_position_values(part.indices[0], layers))
            elif isinstance(part, sympy.Symbol):
                symbols[part.name] = part
            else:
                functions[part.func.__name__] = part
    words = _AT_POSITIONS if system.has_stream else {}
    entries = [GlossaryEntry(n, to_latex(_template(min(occ)[-1])), words.get(n) or meaning(n),
                             tuple(sorted(positions[n]))) for n, occ in indexed.items()]
    entries += [GlossaryEntry(n, _FUNCTIONS.get(n) or to_latex(f.func(sympy.Symbol("x"))), meaning(n))
                for n, f in functions.items()]
    entries += [GlossaryEntry(n, to_latex(x), meaning(n) or "a hyperparameter of the spec")
                for n, x in symbols.items() if x not in _NOT_INDEX]
    return tuple(sorted(entries, key=_glossary_key))


def _glossary_key(entry: GlossaryEntry):
    """Fixed names in `_ORDER_NAMES` order, then sizes, then everything else alphabetically."""
    if entry.name in _ORDER_NAMES:
        return (0, _ORDER_NAMES.index(entry.name), "")
    return (1 if entry.name in SIZE_MEANINGS or entry.positions else 2, 0, entry.name)


def format_positions(values) -> str:
    """Sorted positions as runs: (1, 2, 3, 5, 16, 17, 18) -> "1--3, 5, 16--18" (LaTeX en dashes)."""
    runs: list[list[int]] = []
    for v in sorted(values):
        if runs and v == runs[-1][-1] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}, {r[1]}" if len(r) == 2 else f"{r[0]}--{r[-1]}"
                     for r in runs)


def _positions_of(system: EquationSystem, base: str, kinds=None) -> tuple[int, ...]:
    """Positions of the equations whose left-hand side is `base` (of the given kinds)."""
    out = set()
    for e in system.equations:
        lhs = e.lhs
        if isinstance(lhs, sympy.Indexed) and lhs.base.name == base and (kinds is None or e.kind in kinds):
            out.update(_position_values(lhs.indices[0], e.layers))
    return tuple(sorted(out))


def indices_text(system: EquationSystem) -> str:
    """The index conventions of the printed equations, in LaTeX prose: the ranges of the sample and time
    indices, and what the upper index (a position) numbers, the transformer's stream included."""
    tokens = system.tokens
    samples = (r"$\mu, \nu, \kappa = 0, \dots, P S - 1$ run over the $P S$ tokens of the data, sequence-major: "
               r"token $j$ of sequence $p$ is $\mu = p S + j$ ($j = 0, \dots, S - 1$, $p = 0, \dots, P - 1$)"
               if tokens else r"$\mu, \nu = 0, \dots, P - 1$ run over the $P$ training inputs"
               + (r", followed by the held-out ones (here $P$ counts both)" if "wtest" in system.training else ""))
    parts = [samples + r"; $t, s = 0, \dots, T$ are steps of training ($T$ = training.steps), $s$ an earlier "
             r"step or the same one; sums print their own ranges."]
    parts.append(_positions_sentence(system))
    if system.heads == "sites":
        parts.append(rf"Attention heads ($H \to \infty$ at fixed $N = {system.key_dim}$): the fields at positions "
                     rf"{format_positions(system.head_positions)} live on a head site, one draw per head of its $N$ "
                     r"coordinates; $\langle\cdot\rangle_{\mathrm{head}}$ averages over them.")
    elif system.heads == "collapse":
        parts.append(r"Attention heads: as $N \to \infty$ every head's logits are deterministic and alike "
                     r"(the heads collapse).")
    return " ".join(parts)


def _positions_sentence(system: EquationSystem) -> str:
    """What the upper index numbers: layers of an MLP, or positions with the residual stream first."""
    if system.regime == "lazy":
        return r"The upper index $\ell$ is the layer."
    stream = _positions_of(system, "H", ("kernel",))
    if not stream:
        return (r"The upper index $\ell$ is a position, a field the single-site process keeps: here hidden layer "
                r"$\ell$, numbered from the input.")
    fields = set(_positions_of(system, "h"))
    ports = sorted(set(_positions_of(system, "z")) - fields - set(stream))
    layernorm = _positions_of(system, "Mln")
    text = (rf"The upper index $\ell$ is a position, a field the single-site process keeps, numbered by the "
            rf"derivation with the residual stream first: positions {format_positions(stream)} are the stream "
            r"(1 the embedding's output, $\ell + 1$ the stream after the $\ell$-th residual branch; a transformer "
            r"block has two, attention then MLP)")
    if not (fields | set(ports)) - set(stream):
        return text + "; there are no other fields."
    text += (r"; the positions after them are the other fields in the order the derivation meets them: the "
             r"outputs of the dense layers inside the blocks (keys, queries, values, attention outputs, hidden "
             r"layers of MLP branches), then the other fields")
    if layernorm:
        text += f" (the LayerNorm outputs, {format_positions(layernorm)})"
    if ports:
        text += (f", then ports ({format_positions(ports)}): a position of its own for each further dense layer "
                 r"reading the same vector (keys, queries and values reading one LayerNorm output), which holds "
                 r"that reader's backward source $r$, backward field $z$ and responses $A$, $B$")
    return text + "."


def glossary_latex(system: EquationSystem) -> str:
    """The glossary section of the standalone document: the index conventions, then a table of every
    printed symbol with its meaning and positions."""
    rows = [rf"${e.latex}$ & {prose_latex(e.meaning)} & {format_positions(e.positions)} \\"
            for e in glossary(system)]
    return "\n".join([r"\section*{Symbols}", r"\paragraph{Indices}", indices_text(system), "",
                      r"\begin{longtable}{@{}l p{0.62\textwidth} l@{}}",
                      r"symbol & meaning & positions $\ell$ \\ \hline \endhead", *rows,
                      r"\end{longtable}"]) + "\n"
