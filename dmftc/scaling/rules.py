"""Power-counting rules: how each op moves the exponents of typical coordinate sizes.

All exponents are powers of one limit symbol n (`Fraction`, or `NEG` = -inf for a
quantity that is absent, e.g. the change of the data). For every vector v the audit
keeps

    F(v)            its coordinates at initialization,
    B(v)            the backward signal df/dv at initialization (raw derivative),
    Dc(v), Dr(v)    its change after training, split into the coherent part (driven by
                    v's own backward signal: weight updates and Onsager responses, so it
                    is aligned with whatever that signal is built from) and the random
                    part (earlier changes propagated through independent W(0)),
    DBc(v), DBr(v)  the same split for the change of the backward signal (the coherent
                    part is aligned with v's forward signal),
    chi(v), kap(v)  the forward and backward susceptibilities Dc - B' and DBc - F', read
                    at the vector whose backward (forward) signal is the total one.

The split is what makes sums over independent copies come out right: random parts add
in quadrature (central limit, e(n)/2), coherent parts add up (e(n)), both across the
contraction of an inner product (attention logits, the logit gradient chi_A) and
across the R blocks of a residual stream (docs/theory.md#populations, #depth, #attention).

Each instruction holds the exponents of its weights and implements four passes:
`init_fwd`, `init_bwd` (step 0: F, B) and `step_fwd`, `step_bwd` (one GD step given
the previous step's changes, `Tape.Dp`, `Tape.DBp`). Inputs are read capped (forward
sizes at 0, backward signals of width vectors at the readout's backward scale
`Tape.nb`), so every exponent reported is a quantity's own divergence, not one
inherited from a diverging input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Union

Exp = Union[Fraction, float]
NEG: float = float("-inf")
ZERO = Fraction(0)

ACT_LINEAR = ("linear", "relu", "gelu")
ACT_BOUNDED = ("tanh", "erf", "sigmoid")


# ------------------------------------------------------------------ arithmetic
def add(*xs: Exp) -> Exp:
    """Sum of exponents (product of sizes); -inf absorbs."""
    if any(x == NEG for x in xs):
        return NEG
    return sum(xs, ZERO)


def mx(*xs: Exp) -> Exp:
    """Leading exponent of a sum of sizes."""
    return max(xs, default=NEG)


def sub(a: Exp, b: Exp) -> Exp:
    """a - b, -inf when either is absent (no signal: no susceptibility)."""
    return NEG if a == NEG or b == NEG else a - b


def half(x: Exp) -> Exp:
    return NEG if x == NEG else x / 2


def twice(x: Exp) -> Exp:
    return NEG if x == NEG else 2 * x


def cap0(x: Exp) -> Exp:
    return min(x, ZERO)


def dphi(fn: str, f: Exp) -> Exp:
    """e(phi'(x)) for inputs of size f: bounded activations saturate for f > 0."""
    if fn == "quadratic":
        return f
    if fn in ACT_BOUNDED and f > 0:
        return NEG
    return ZERO


def act_fwd(fn: str, f: Exp) -> Exp:
    """F(phi(x)) from F(x)."""
    if fn == "quadratic":
        return twice(f)
    if fn == "sigmoid":
        return ZERO
    if fn in ACT_BOUNDED:
        return f if f <= 0 else ZERO
    return f


# ------------------------------------------------------------------ the tape
@dataclass
class Tape:
    """Exponents of every vector id: initialization (F, B) and the current step."""

    nb: Exp = ZERO
    width: frozenset = frozenset()
    F: dict = field(default_factory=dict)
    B: dict = field(default_factory=dict)
    Dp: dict = field(default_factory=dict)
    DBp: dict = field(default_factory=dict)
    Dc: dict = field(default_factory=dict)
    Dr: dict = field(default_factory=dict)
    chi: dict = field(default_factory=dict)
    DBc: dict = field(default_factory=dict)
    DBr: dict = field(default_factory=dict)
    kap: dict = field(default_factory=dict)
    dW: dict = field(default_factory=dict)
    terms: dict = field(default_factory=dict)
    why: dict = field(default_factory=dict)

    def new_step(self) -> "Tape":
        """A tape for the next step: same initialization, this step's totals as `Dp`, `DBp`."""
        ids = set(self.Dc) | set(self.Dr) | set(self.Dp)
        bids = set(self.DBc) | set(self.DBr) | set(self.DBp)
        return Tape(self.nb, self.width, self.F, self.B,
                    {v: mx(self.Dp.get(v, NEG), self.dtot(v)) for v in ids},
                    {v: mx(self.DBp.get(v, NEG), self.dbtot(v)) for v in bids})

    # raw totals (what is stored and reported)
    def dtot(self, v) -> Exp:
        return mx(self.Dc.get(v, NEG), self.Dr.get(v, NEG))

    def dbtot(self, v) -> Exp:
        return mx(self.DBc.get(v, NEG), self.DBr.get(v, NEG))

    # capped reads (what the rules use)
    def _capb(self, v, x: Exp) -> Exp:
        return min(x, self.nb) if v in self.width else x

    def f(self, v) -> Exp:
        return cap0(self.F.get(v, NEG))

    def fp(self, v) -> Exp:
        return cap0(mx(self.F.get(v, NEG), self.Dp.get(v, NEG)))

    def fc(self, v) -> Exp:
        return cap0(mx(self.F.get(v, NEG), self.dtot(v)))

    def d(self, v) -> Exp:
        return cap0(self.dtot(v))

    def dc(self, v) -> Exp:
        return cap0(self.Dc.get(v, NEG))

    def dr(self, v) -> Exp:
        return cap0(self.Dr.get(v, NEG))

    def b(self, v) -> Exp:
        return self._capb(v, self.B.get(v, NEG))

    def bp(self, v) -> Exp:
        return self._capb(v, mx(self.B.get(v, NEG), self.DBp.get(v, NEG)))

    def bc(self, v) -> Exp:
        return self._capb(v, mx(self.B.get(v, NEG), self.dbtot(v)))

    def db(self, v) -> Exp:
        return self._capb(v, self.dbtot(v))

    def dbc(self, v) -> Exp:
        return self._capb(v, self.DBc.get(v, NEG))

    def dbr(self, v) -> Exp:
        return self._capb(v, self.DBr.get(v, NEG))

    # accumulation into a vector with several consumers
    def put(self, table: dict, v, x: Exp) -> None:
        table[v] = mx(table.get(v, NEG), x)


def _argmax(pairs) -> str:
    best = max(pairs, key=lambda p: p[1])
    return best[0] if best[1] != NEG else ""


# ------------------------------------------------------------------ weights
@dataclass(frozen=True)
class WExp:
    """One weight (one copy of a template) in exponents of the limit symbol.

    y = m W x with W_ij ~ N(0, s^2), GD step lam, fan_in nin, fan_out nout.
    """

    name: str
    key: str
    role: str
    m: Fraction
    s: Fraction
    lam: Exp
    nin: Fraction
    nout: Fraction
    #: Adam: a step moves every entry by O(lr), whatever the gradient's size (m_hat / sqrt(v_hat) = O(1))
    adam: bool = False


def dense_init_fwd(t: Tape, w: WExp, x, y) -> None:
    t.F[y] = add(w.m, w.s, half(w.nin), t.f(x))          # central limit over the fan-in


def dense_init_bwd(t: Tape, w: WExp, x, y) -> None:
    t.put(t.B, x, add(w.m, w.s, half(w.nout), t.b(y)))   # central limit over the fan-out


def dense_step_fwd(t: Tape, w: WExp, x, y) -> None:
    dW = w.lam if w.adam else add(w.lam, w.m, t.bp(y), t.fp(x))   # raw entry change of W (GD, or Adam's O(lr))
    update = add(w.m, dW, w.nin, t.fc(x))                 # (a) Delta W x: coherent over nin
    response = add(twice(w.m), twice(w.s), w.nin, t.chi.get(x, NEG), t.bp(y))  # (c) Onsager
    source = add(w.m, w.s, half(w.nin), t.d(x))           # (b) W(0) Delta x: random
    t.dW[w.key] = dW
    t.Dc[y], t.Dr[y] = mx(update, response), source
    t.chi[y] = sub(t.dc(y), t.bp(y))
    t.why[y, "D"] = _argmax((("update", update), ("response", response), ("source", source)))
    t.terms[w.key] = {"source": add(w.m, w.s, half(w.nin), t.fc(x)), "update": update,
                      "response": response}


def dense_step_bwd(t: Tape, w: WExp, x, y) -> None:
    bupdate = add(w.m, t.dW[w.key], w.nout, t.bc(y))      # Delta W^T g: aligned with x
    bresponse = add(twice(w.m), twice(w.s), w.nout, t.kap.get(y, NEG), t.fc(x))
    bsource = add(w.m, w.s, half(w.nout), t.db(y))        # W(0)^T Delta g: random
    if mx(bupdate, bresponse, bsource) >= t.dbtot(x) and mx(bupdate, bresponse, bsource) != NEG:
        tag = _argmax((("bupdate", bupdate), ("bresponse", bresponse), ("bsource", bsource)))
        t.why[x, "DB"] = f"{tag}:{w.name}"
    t.put(t.DBc, x, mx(bupdate, bresponse))
    t.put(t.DBr, x, bsource)
    t.terms[w.key].update(bsource=sub(add(w.m, w.s, half(w.nout), t.bc(y)), t.nb),
                          bupdate=sub(bupdate, t.nb), bresponse=sub(bresponse, t.nb))


def set_kap(t: Tape, x) -> None:
    t.kap[x] = sub(t.dbc(x), t.fc(x))


# ------------------------------------------------------------------ instructions
@dataclass(frozen=True)
class Dense:
    """y = m W x (dense layers and the readout, whose y is the output f)."""

    w: WExp
    x: str
    y: str

    def init_fwd(self, t: Tape) -> None:
        dense_init_fwd(t, self.w, self.x, self.y)

    def init_bwd(self, t: Tape) -> None:
        if self.w.role == "readout":
            t.B[self.y] = ZERO                               # df/df = 1
        dense_init_bwd(t, self.w, self.x, self.y)

    def step_fwd(self, t: Tape) -> None:
        dense_step_fwd(t, self.w, self.x, self.y)

    def step_bwd(self, t: Tape) -> None:
        dense_step_bwd(t, self.w, self.x, self.y)
        set_kap(t, self.x)


@dataclass(frozen=True)
class Act:
    """Elementwise phi."""

    fn: str
    x: str
    y: str

    def init_fwd(self, t: Tape) -> None:
        t.F[self.y] = act_fwd(self.fn, t.f(self.x))

    def init_bwd(self, t: Tape) -> None:
        t.put(t.B, self.x, add(t.b(self.y), dphi(self.fn, t.f(self.x))))

    def step_fwd(self, t: Tape) -> None:
        d = dphi(self.fn, t.fc(self.x))
        t.Dc[self.y], t.Dr[self.y] = add(t.dc(self.x), d), add(t.dr(self.x), d)
        t.chi[self.y] = add(t.chi.get(self.x, NEG), twice(d))
        t.why[self.y, "D"] = "input"

    def step_bwd(self, t: Tape) -> None:
        x, y, d = self.x, self.y, dphi(self.fn, t.fc(self.x))
        t.put(t.DBc, x, add(t.dbc(y), d))
        gate = NEG if self.fn == "linear" else (
            t.d(x) if self.fn == "quadratic" else cap0(sub(t.d(x), t.fc(x))))
        t.put(t.DBr, x, mx(add(t.db(y), d), add(gate, t.bc(y))))   # phi'(x) itself moves
        t.kap[x] = add(t.kap.get(y, NEG), twice(d))


@dataclass(frozen=True)
class Norm:
    """Parameter-free LayerNorm: divides by the size of its input."""

    x: str
    y: str

    def init_fwd(self, t: Tape) -> None:
        t.F[self.y] = ZERO if t.F.get(self.x, NEG) != NEG else NEG

    def init_bwd(self, t: Tape) -> None:
        t.put(t.B, self.x, sub(t.b(self.y), t.f(self.x)))

    def step_fwd(self, t: Tape) -> None:
        fx = t.fc(self.x)
        t.Dc[self.y], t.Dr[self.y] = sub(t.dc(self.x), fx), sub(t.dr(self.x), fx)
        t.chi[self.y] = sub(t.chi.get(self.x, NEG), twice(fx))
        t.why[self.y, "D"] = "input"

    def step_bwd(self, t: Tape) -> None:
        x, y, fx = self.x, self.y, t.fc(self.x)
        t.put(t.DBc, x, sub(t.dbc(y), fx))
        t.put(t.DBr, x, mx(sub(t.db(y), fx), add(cap0(sub(t.d(x), fx)), sub(t.bc(y), fx))))
        t.kap[x] = sub(t.kap.get(y, NEG), twice(fx))


@dataclass(frozen=True)
class Pool:
    """Mean over the S tokens (S has exponent eS)."""

    x: str
    y: str
    eS: Fraction

    def init_fwd(self, t: Tape) -> None:
        t.F[self.y] = t.f(self.x)

    def init_bwd(self, t: Tape) -> None:
        t.put(t.B, self.x, sub(t.b(self.y), self.eS))

    def step_fwd(self, t: Tape) -> None:
        t.Dc[self.y], t.Dr[self.y] = t.dc(self.x), t.dr(self.x)
        t.chi[self.y] = t.chi.get(self.x, NEG)
        t.why[self.y, "D"] = "input"

    def step_bwd(self, t: Tape) -> None:
        t.put(t.DBc, self.x, sub(t.dbc(self.y), self.eS))
        t.put(t.DBr, self.x, sub(t.db(self.y), self.eS))
        t.kap[self.x] = sub(t.kap.get(self.y, NEG), twice(self.eS))


@dataclass(frozen=True)
class Attention:
    """Multi-head self-attention (docs/theory.md#attention-logit-scale).

    k, q, v = m W_{K,Q,V} x per head (dimension N = key_dim, exponent nc); logits
    A = ls k . q (inner product over nc); p = softmax(A) over keys; o = p v; y = m W_O o.
    The logit gradient is chi_A = p g_o . (v - o), again an inner product over nc.
    """

    name: str
    K: WExp
    Q: WExp
    V: WExp
    O: WExp
    ls: Fraction
    nc: Fraction
    x: str
    y: str

    def ids(self):
        return tuple(f"{self.y}.{s}" for s in "kqvAo")

    def init_fwd(self, t: Tape) -> None:
        k, q, v, A, o = self.ids()
        for w, z in ((self.K, k), (self.Q, q), (self.V, v)):
            dense_init_fwd(t, w, self.x, z)
        t.F[A] = add(self.ls, half(self.nc), t.f(k), t.f(q))   # independent at init
        t.F[o] = t.f(v)
        dense_init_fwd(t, self.O, o, self.y)

    def init_bwd(self, t: Tape) -> None:
        k, q, v, A, o = self.ids()
        dense_init_bwd(t, self.O, o, self.y)
        t.B[v] = t.b(o)
        t.B[A] = add(half(self.nc), t.b(o), t.f(v))
        t.B[q] = add(self.ls, t.B[A], t.f(k))
        t.B[k] = add(self.ls, t.B[A], t.f(q))
        for w, z in ((self.K, k), (self.Q, q), (self.V, v)):
            dense_init_bwd(t, w, self.x, z)

    def step_fwd(self, t: Tape) -> None:
        k, q, v, A, o = self.ids()
        for w, z in ((self.K, k), (self.Q, q), (self.V, v)):
            dense_step_fwd(t, w, self.x, z)
        # Delta q is built from the keys (its gradient is ls sum chi k): coherent with k.
        coh = add(self.ls, self.nc, mx(add(t.dc(k), t.fc(q)), add(t.dc(q), t.fc(k))))
        rnd = add(self.ls, half(self.nc), mx(add(t.d(k), t.fc(q)), add(t.d(q), t.fc(k))))
        t.Dc[A], t.Dr[A] = coh, rnd
        t.why[A, "D"] = _argmax((("logit-coherent", coh), ("logit-random", rnd)))
        t.Dc[o] = mx(t.dc(v), add(cap0(coh), t.fc(v)))
        t.Dr[o] = mx(t.dr(v), add(cap0(rnd), t.fc(v)))
        t.chi[o] = sub(t.dc(o), t.bp(o))
        dense_step_fwd(t, self.O, o, self.y)

    def step_bwd(self, t: Tape) -> None:
        k, q, v, A, o = self.ids()
        dense_step_bwd(t, self.O, o, self.y)
        set_kap(t, o)
        bo = t.bc(o)
        # chi_A = p g_o . (v - o): Delta v is aligned with g_o, Delta g_o with o (v's).
        coh = add(self.nc, mx(add(bo, t.dc(v)), add(t.dbc(o), t.fc(v))))
        rnd = mx(add(half(self.nc), mx(add(t.db(o), t.fc(v)), add(bo, t.d(v)))),
                 add(cap0(t.dtot(A)), t.B[A]))
        t.DBc[A], t.DBr[A] = coh, rnd
        t.why[A, "DB"] = _argmax((("chi-coherent", coh), ("chi-random", rnd)))
        bA = mx(t.B[A], coh, rnd)
        t.DBc[v] = mx(t.dbc(o), add(cap0(t.Dc.get(A, NEG)), bo))
        t.DBr[v] = mx(t.db(o), add(cap0(t.Dr.get(A, NEG)), bo))
        for z, other in ((q, k), (k, q)):
            t.DBc[z] = add(self.ls, bA, t.dc(other))          # aligned with z's forward
            t.DBr[z] = add(self.ls, mx(add(mx(coh, rnd), t.fc(other)), add(bA, t.dr(other))))
            t.why[z, "DB"] = "attention"
        for z in (q, k, v):
            set_kap(t, z)
        for w, z in ((self.K, k), (self.Q, q), (self.V, v)):
            dense_step_bwd(t, w, self.x, z)
        set_kap(t, self.x)


@dataclass(frozen=True)
class Residual:
    """y = x + beta * branch(x) for R copies (exponent eR: 0 unless a limit repeat).

    Random branch contributions add in quadrature over the R blocks, coherent
    (update-driven) ones add up; the backward likewise through the identity path plus
    beta into the branch. `bx` is the branch's copy of x, `by` its output.
    """

    node: str
    beta: Fraction
    eR: Fraction
    body: tuple
    x: str
    y: str
    bx: str
    by: str

    def init_fwd(self, t: Tape) -> None:
        t.F[self.bx] = t.F[self.x]
        for ins in self.body:
            ins.init_fwd(t)
        t.F[self.y] = mx(t.f(self.x), add(self.beta, half(self.eR), t.f(self.by)))

    def init_bwd(self, t: Tape) -> None:
        t.B[self.by] = add(self.beta, t.b(self.y))
        for ins in reversed(self.body):
            ins.init_bwd(t)
        t.put(t.B, self.x, mx(t.b(self.y), add(half(self.eR), t.b(self.bx))))

    def step_fwd(self, t: Tape) -> None:
        x, y = self.x, self.y
        t.Dc[self.bx], t.Dr[self.bx] = t.Dc.get(x, NEG), t.Dr.get(x, NEG)
        t.chi[self.bx] = t.chi.get(x, NEG)
        for ins in self.body:
            ins.step_fwd(t)
        coh = add(self.beta, self.eR, t.dc(self.by))
        rnd = add(self.beta, half(self.eR), t.dr(self.by))
        t.Dc[y], t.Dr[y] = mx(t.dc(x), coh), mx(t.dr(x), rnd)
        t.chi[y] = sub(t.dc(y), t.bp(y))
        t.why[y, "D"] = _argmax((("input", t.d(x)), ("branches", mx(coh, rnd))))

    def step_bwd(self, t: Tape) -> None:
        x, y = self.x, self.y
        t.DBc[self.by] = add(self.beta, t.dbc(y))
        t.DBr[self.by] = add(self.beta, t.dbr(y))
        t.kap[self.by] = add(t.kap.get(y, NEG), twice(self.beta))
        for ins in reversed(self.body):
            ins.step_bwd(t)
        t.put(t.DBc, x, mx(t.dbc(y), add(self.eR, t.dbc(self.bx))))
        t.put(t.DBr, x, mx(t.db(y), add(half(self.eR), t.dbr(self.bx))))
        set_kap(t, x)
