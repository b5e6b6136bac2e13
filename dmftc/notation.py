"""The shared vocabulary: sympy symbols for sizes and hyperparameters.

Every stage builds symbols through these two functions, so the same name is
always the same sympy object (all positive, so powers and logs simplify), and
substitution of finite values works across stages.
"""

from __future__ import annotations

import functools

import sympy

#: size symbols with a meaning in the theory (docs/theory.md#glossary); a spec may declare others.
SIZE_MEANINGS = {
    "N": "width (key/query/value dimension per head in attention)",
    "H": "number of attention heads",
    "L": "depth: hidden layers or residual blocks",
    "S": "tokens per sequence",
    "P": "number of training inputs",
    "D": "input dimension",
}

#: data sizes: always declared, finite, set by the data.
DATA_SIZES = ("P", "D", "S")

#: names the derivation gives its own symbols (times t, s; samples mu, nu; layer ell; head kappa;
#: the layer-time grid tau, dtau; the memo layer lambda_layer): a size or hyperparameter of one of
#: these names would be read as the internal symbol (a hyper `dtau` once replaced the user's value
#: with the depth grid's step), so the spec refuses them.
RESERVED = frozenset({"t", "s", "mu", "nu", "ell", "kappa", "tau", "dtau", "lambda_layer"})


@functools.cache
def size_symbol(name: str) -> sympy.Symbol:
    """The size symbol `name` (positive integer)."""
    return sympy.Symbol(name, positive=True, integer=True)


@functools.cache
def hyper_symbol(name: str) -> sympy.Symbol:
    """The hyperparameter symbol `name` (positive real)."""
    return sympy.Symbol(name, positive=True)


# ---------------------------------------------------------------- DMFT vocabulary
#: index symbols: times t, s; samples mu, nu; layer ell.
t, s = sympy.symbols("t s", integer=True, nonnegative=True)
mu, nu = sympy.symbols("mu nu", integer=True, nonnegative=True)
ell = sympy.Symbol("ell", integer=True, positive=True)

#: per-draw single-site fields (indices [layer, sample, time]) and their sources.
h, z, g, u, r = (sympy.IndexedBase(n) for n in ("h", "z", "g", "u", "r"))
#: two-time order parameters (indices [layer, mu, nu, t, s]).
Phi, G, A, B = (sympy.IndexedBase(n) for n in ("Phi", "G", "A", "B"))
#: the residual stream's own kernel <h(t) h(s)> (indices [layer, mu, nu, t, s]).
H = sympy.IndexedBase("H")
#: deterministic output quantities: f[mu, t], Delta[mu, t], y[mu], data kernel Phi0[mu, nu], loss[t].
f, Delta, y, Phi0, Loss = (sympy.IndexedBase(n) for n in ("f", "Delta", "y", "Phi0", "Loss"))
#: the training setup (dmftc.training, docs/theory.md#training-setups): the optimizer's filter Kappa[t, s]
#: (the weight of step s's gradient in W(t), in units of the learning rate), the factor adec[t] left of
#: the initial weights by weight decay, the error weights Omega[t, mu] (1/|B_t| on step t's batch), the
#: loss weights over the training and held-out points wtrain[mu], wtest[mu], and those two losses.
Kappa, adec, Omega, wtrain, wtest = (sympy.IndexedBase(n) for n in ("Kappa", "adec", "Omega", "wtrain", "wtest"))
LossTest, LossBatch = sympy.IndexedBase("LossTest"), sympy.IndexedBase("LossBatch")
#: the logistic function and log(1 + e^x): the cross-entropy of two classes y = +-1 of the logit f is
#: Softplus(-y f), its error signal y Sigmoid(-y f)
Sigmoid, Softplus = sympy.Function("Sigmoid"), sympy.Function("Softplus")
#: equal-time kernels of the lazy limit (indices [layer, mu, nu]): preactivation covariance,
#: feature kernel, derivative kernel, gradient kernel, and the NTK K[mu, nu], output covariance Sigma_f.
Sigma, Phik, Phid, Gk, K, Sigmaf = (sympy.IndexedBase(n) for n in ("Sigma", "PhiK", "PhiD", "GK", "K", "Sigmaf"))

#: the transformer's vocabulary (docs/theory.md#attention), indices [block, position, time] for fields,
#: positions alpha = (mu, s) flattened sample-major over the P S tokens of the data:
#: stream site: LayerNorm output hb, its backward field gb (g is the stream's own);
#: head site: keys, queries, values, attention output and their backward fields;
#: MLP-branch site: hidden preactivation x, its z and g fields.
hb, gb = (sympy.IndexedBase(n) for n in ("hb", "gb"))
k_, q_, v_, o_ = (sympy.IndexedBase(n) for n in ("k", "q", "v", "o"))
gk, gq, gv, go = (sympy.IndexedBase(n) for n in ("gk", "gq", "gv", "go"))
x_, zx, gx = (sympy.IndexedBase(n) for n in ("x", "zx", "gx"))
#: the gamma0 = 0 twins of fields (same draws, no response or update terms): control variates.
h0, g0, o0, gk0, gq0, gv0 = (sympy.IndexedBase(n) for n in ("h0", "g0", "o0", "gk0", "gq0", "gv0"))
#: the exact kernel <h0 h0> of the gamma0 = 0 stream (a sum of independent Gaussian sources)
H0 = sympy.IndexedBase("H0")
#: equal-time order parameters of attention, indices [block, alpha, beta, time]: logits,
#: softmax, <g^o v> and the softmax-Jacobian image D; LayerNorm's projection C[block, alpha, time].
Lam, Sm, Mm, Dm, Cln = (sympy.IndexedBase(n) for n in ("Lam", "Sm", "Mm", "Dm", "C"))
#: a LayerNorm's population mean <e> and second moment <e e>, and the mean <g> of its backward field,
#: indices [position, mu, time] (C above is its projection <LN g>)
Mln, Vln, Cg = (sympy.IndexedBase(n) for n in ("Mln", "Vln", "Cg"))
#: per-position output contributions and the sequence output seen at each position; same-sequence mask.
ftok, Fseq, Seq = (sympy.IndexedBase(n) for n in ("ftok", "F", "Seq"))
#: a second position index (row sums of the softmax Jacobian).
kappa = sympy.Symbol("kappa", integer=True, nonnegative=True)
#: softmax over the positions of one sequence (the mask Seq), row-wise.
Softmax = sympy.Function("Softmax")
#: the average over one head's N coordinates (H -> oo at fixed N: a random variable per head).
HeadMean = sympy.Function("HeadMean")
#: the head's order parameters at gamma0 = 0 (its own random logits from the sources): control variates.
Lam0, Sm0, Mm0, Dm0 = (sympy.IndexedBase(n) for n in ("Lam0", "Sm0", "Mm0", "Dm0"))


def weight_bases(role: str) -> tuple[sympy.IndexedBase, ...]:
    """(u, r, A, B) of a dense weight role in a transformer block: its forward and backward sources
    and its forward and backward responses, e.g. role "K" -> uK, rK, AK, BK."""
    return tuple(sympy.IndexedBase(f"{b}{role}") for b in ("u", "r", "A", "B"))


#: the activation and its derivative as undefined functions (the compiler maps them by name).
phi = sympy.Function("phi")
dphi = sympy.Function("dphi")
#: expectation over the single-site process, and a response (derivative of a field w.r.t. a source).
Expect = sympy.Function("E")
Response = sympy.Function("Response")
#: Gaussian expectation maps of the lazy limit: E_{u ~ N(0, Sigma)}[phi(u) phi(u)^T] and [phi' phi'].
GaussPhi = sympy.Function("GaussPhi")
GaussDPhi = sympy.Function("GaussDPhi")

#: code name -> (LaTeX, meaning, paper equation); one table for printers, docs and docstrings.
NOTATION = {
    "h": (r"h", "preactivation of layer ell (forward field)", "BP22 eq. (9)"),
    "z": (r"z", "backward field before the activation derivative", "BP22 eq. (9)"),
    "g": (r"g", "backward field g = phi'(h) z = gamma0 N df/dh", "BP22 eq. (9)"),
    "u": (r"u", "forward Gaussian source, covariance Phi^{ell-1}", "BP22 eq. (9)"),
    "r": (r"r", "backward Gaussian source, covariance G^{ell+1}", "BP22 eq. (9)"),
    "Phi": (r"\Phi", "feature kernel <phi(h(t)) phi(h(s))>", "BP22 eq. (8)"),
    "G": (r"G", "gradient kernel <g(t) g(s)>", "BP22 eq. (8)"),
    "A": (r"A", "forward response <d phi(h(t)) / d r(s)>", "BP22 eq. (10)"),
    "B": (r"B", "backward response <d g(t) / d u(s)>", "BP22 eq. (10)"),
    "Delta": (r"\Delta", "error signal (y - f) / P", "docs/theory.md#conventions"),
    "f": (r"f", "network output", "BP22 eq. (11)"),
    "Phi0": (r"\Phi^{0}", "data kernel x . x' / D", "docs/theory.md#conventions"),
    "K": (r"K", "neural tangent kernel (lazy limit)", "docs/theory.md#lazy-limit"),
    "Kappa": (r"\mathcal{K}", "optimizer filter: weight of step s's gradient in W(t) (momentum, schedule, decay)",
              "docs/theory.md#training-setups"),
    "adec": (r"a", "factor of the initial weights at step t left by weight decay", "docs/theory.md#training-setups"),
    "Omega": (r"\Omega", "error weight of point mu at step t: 1/|B_t| on the batch", "docs/theory.md#training-setups"),
}


def as_expr(x) -> sympy.Expr:
    """A sympy object from a sympy object or a Python number; strings are refused (never parsed)."""
    if isinstance(x, sympy.Basic):
        return x
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"expected a sympy expression or a number, got {type(x).__name__}")
    return sympy.Integer(x) if isinstance(x, int) else sympy.Float(x)
