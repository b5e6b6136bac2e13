"""A hypothesis strategy that composes random architectures as spec TEXT (docs/spec.md).

`architectures()` draws an `Arch`: a top-level layout (an MLP chain or a residual network),
its ops, a preset and a limit; `transformers()` draws token models (attention, layernorm and pool
anywhere the spec format allows, in the N or the H limit), rendered by `Arch.text` as a small, quick spec (N = 64,
L = 2 or 3, synthetic data P = 4, D = 8, 2 steps, 256 solver samples). `repeat_twins()`
draws one MLP body and writes it twice: once as `repeat: {times: L, body}` holding the
input layer, once unrolled L times with explicit weight names.

    from .compose_strategy import architectures   # from a test module in tests/dmft
    @given(architectures(presets=("mup",)))
    def test_x(arch): prog = dmftc.compile_spec(arch.load())

The builders (`mlp`, `resnet`, `twin`) are plain functions, so a test can also write a
fixed layout (the ones that derive today) with the same renderer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import yaml
from hypothesis import strategies as st

from dmftc.spec.types import ACTIVATIONS

N, P, D, STEPS, SAMPLES = 64, 4, 8, 2, 256
WIDTHS = ("N", "2*N", "N/2")  # fan-out expressions of a hidden dense op
MLP_PRESETS = ("mup", "ntk")
RESNET_PRESETS = ("depth_mup", "completep")
ALPHA_L = {"depth_mup": 0.5, "completep": 1.0}  # the preset's depth exponent, read from the branch scale
DEPTH_STEPS = 4  # solver.depth_steps in an {N: inf, L: inf} limit
BRANCH_SCALE = "beta0 / L**alpha_L"


def act(fn: str) -> dict:
    return {"act": fn}


def layernorm() -> dict:
    return {"layernorm": {}}


def dense(out: str, name: str | None = None) -> dict:
    return {"dense": {"out": out, **({"name": name} if name else {})}}


def is_linear(op: dict) -> bool:
    """A pointwise op that keeps the network linear in its input (layernorm does not)."""
    return op.get("act") == "linear"


@dataclass(frozen=True)
class Arch:
    """One composed architecture: `model` is the list of op mappings as written in YAML."""

    layout: str  # 'mlp', 'resnet' or 'transformer'
    preset: str
    model: tuple
    L: int = 2
    limit: tuple = ("N",)
    name: str = "composed"
    samples: int = SAMPLES
    seed: int = 0
    alpha_A: float = 1.0  # transformers: logit scale N**(-alpha_A)
    notes: tuple = field(default=(), compare=False)  # how it was drawn (for a readable failure)

    @property
    def hyper(self) -> dict:
        h = {"gamma0": 1.0, "eta": 0.1} if self.preset != "ntk" and self.preset != "sp" else {"eta": 0.1}
        if self.layout == "resnet":
            h.update(beta0=1.0, alpha_L=ALPHA_L.get(self.preset, 0.5))
        if self.layout == "transformer":
            h.update(beta0=1.0, alpha_L=ALPHA_L.get(self.preset, 1.0), alpha_A=self.alpha_A)
        return h

    @property
    def exact(self) -> bool:
        """Every pointwise op is `linear` (the DMFT is Gaussian and solved exactly)."""
        return all(is_linear(op) for op in _pointwise(self.model))

    def tree(self) -> dict:
        solver = {"samples": self.samples, "seed": self.seed}
        if "L" in self.limit:
            solver["depth_steps"] = DEPTH_STEPS
        sizes, data = {"N": N, "L": self.L}, {"P": P, "D": D, "target": "tanh_linear", "seed": 0}
        if self.layout == "transformer":  # N: key/query dim per head; width N H; N fixed when H -> oo
            sizes = {"N": TF_N if "N" in self.limit else TF_KEY_DIM, "H": TF_H if "N" in self.limit else TF_HEADS,
                     "L": self.L, "S": TF_S}
            data = {"P": P, "S": TF_S, "D": D, "target": "teacher_attention", "seed": 0}
        return {
            "dmftc": 1, "name": self.name, "sizes": sizes, "hyper": self.hyper,
            "model": [*self.model, {"readout": {}}],
            "parameterization": {"preset": self.preset},
            "limit": {s: float("inf") for s in self.limit},
            "training": {"lr": "eta", "steps": STEPS},
            "data": {"synthetic": data},
            "solver": solver,
        }

    @property
    def text(self) -> str:
        return yaml.safe_dump(self.tree(), sort_keys=False, default_flow_style=None, width=100)

    def load(self, overrides=()):
        from dmftc.spec import loads

        return loads(self.text, overrides=list(overrides))

    def __repr__(self) -> str:  # hypothesis prints the falsifying example with this
        return f"Arch({', '.join(self.notes)})\n{self.text}"


#: transformer sizes: N limit (key dim 16, 2 heads), H limit (key dim 4, 8 heads); S tokens
TF_N, TF_H, TF_KEY_DIM, TF_HEADS, TF_S = 16, 2, 4, 8, 3
WIDTH_TF = "N*H"
ATTENTION = {"attention": {"heads": "H", "key_dim": "N", "logit_scale": "N**(-alpha_A)"}}


def _pointwise(ops):
    for op in ops:
        if "act" in op or "layernorm" in op:
            yield op
        for key in ("repeat", "residual"):
            if key in op:
                yield from _pointwise(op[key].get("body", op[key].get("branch", ())))


# ------------------------------------------------------------------ plain builders
def mlp(hidden, preset="mup", form="flat", L=2, tail=(), **kw) -> Arch:
    """An MLP from hidden = [(width, [pointwise ops]), ...] (at least one layer).

    form 'flat': every layer written out; 'repeat_rest': the first layer, then
    `repeat: {times: L - 1, body: <layer 2>}` (hidden must have 2 entries); 'repeat_input':
    `repeat: {times: L, body: <layer 1>}` holding the input layer, then the remaining layers.
    `tail`: pointwise ops before the readout (after everything else).
    """
    layer = lambda w, ops: [dense(w), *ops]  # noqa: E731
    if form == "flat":
        model = [op for w, ops in hidden for op in layer(w, ops)]
    elif form == "repeat_rest":
        (w0, ops0), (w1, ops1) = hidden
        model = [*layer(w0, ops0), {"repeat": {"times": "L - 1", "body": layer(w1, ops1)}}]
    elif form == "repeat_input":
        (w0, ops0), *rest = hidden
        model = [{"repeat": {"times": "L", "body": layer(w0, ops0)}}, *(op for w, o in rest for op in layer(w, o))]
    else:
        raise ValueError(form)
    notes = (f"mlp/{form}", preset, f"L={L}", *kw.pop("notes", ()))
    return Arch("mlp", preset, tuple(model + list(tail)), L=L, notes=notes, **kw)


def resnet(before, widths, between, after, tail=(), preset="depth_mup", L=2, limit=("N",), **kw) -> Arch:
    """embed (out N), L residual blocks whose branch is [before, dense, between, dense?, after], tail, readout.

    `widths`: the branch's dense fan-outs (1 or 2; the last one is N, the stream's width).
    """
    assert widths[-1] == "N" and len(widths) in (1, 2)
    branch = [*before, dense(widths[0])]
    if len(widths) == 2:
        branch += [*between, dense(widths[1])]
    branch += list(after)
    block = {"residual": {"scale": BRANCH_SCALE, "branch": branch}}
    model = [dense("N", "embed"), {"repeat": {"times": "L", "body": [block]}}, *tail]
    notes = ("resnet", preset, f"L={L}", f"limit={'+'.join(limit)}", *kw.pop("notes", ()))
    return Arch("resnet", preset, tuple(model), L=L, limit=tuple(limit), notes=notes, **kw)


def twin(width, ops, preset="mup", L=2, hold_input=True, **kw) -> tuple[Arch, Arch]:
    """The same L layers [dense(width), *ops] written as a repeat and unrolled (weights W0..W{L-1}).

    hold_input=True: `repeat: {times: L, body}` holds the input layer. False: the first
    layer is written out and `repeat: {times: L - 1}` holds the rest (the layout of
    specs/mlp_mup_relu.yaml).
    """
    body = [dense(width), *ops]
    if hold_input:
        rolled = [{"repeat": {"times": "L", "body": body}}]
    else:
        rolled = [dense(width, "W0"), *ops, {"repeat": {"times": "L - 1", "body": body}}]
    unrolled = [op for k in range(L) for op in (dense(width, f"W{k}"), *ops)]
    notes = (f"twin/{'hold_input' if hold_input else 'first_outside'}", preset, f"L={L}")
    a = Arch("mlp", preset, tuple(rolled), L=L, name="rolled", notes=notes + ("rolled",), **kw)
    b = Arch("mlp", preset, tuple(unrolled), L=L, name="unrolled", notes=notes + ("unrolled",), **kw)
    return a, b


def transformer(pre, blocks, tail, post, final_ln=False, L=2, limit=("N",), alpha_A=1.0, preset="mup",
                **kw) -> Arch:
    """embed (out N H), per-token `pre` ops, `repeat: {times: L, body: blocks}`, `tail` ops (bare attention
    and the like, before the pool), an optional final layernorm, pool, `post` ops (after the pool), readout.

    `blocks`: the body's ops, e.g. residual branches made by `attention_branch` / `mlp_branch`, layernorms.
    """
    model = [dense(WIDTH_TF, "embed"), *pre]
    if blocks:
        model.append({"repeat": {"times": "L", "body": list(blocks)}})
    model += [*tail, *([layernorm()] if final_ln else []), {"pool": "mean"}, *post]
    notes = ("transformer", preset, f"L={L}", f"limit={'+'.join(limit)}", f"alpha_A={alpha_A}", *kw.pop("notes", ()))
    return Arch("transformer", preset, tuple(model), L=L, limit=tuple(limit), alpha_A=alpha_A, notes=notes, **kw)


def attention_branch(pre_ln: bool) -> dict:
    return {"residual": {"scale": BRANCH_SCALE, "branch": [*([layernorm()] if pre_ln else []), ATTENTION]}}


def mlp_branch(pre_ln: bool, inner: list, widths=("N*H",)) -> dict:
    """[layernorm?, dense(w0), inner..., dense(w1), ..., dense(N H)]: the last dense returns to the stream."""
    branch = [*([layernorm()] if pre_ln else []), dense(widths[0]), *inner]
    for w in (*widths[1:], WIDTH_TF):
        branch.append(dense(w))
    return {"residual": {"scale": BRANCH_SCALE, "branch": branch}}


# ------------------------------------------------------------------ strategies
pointwise_ops = st.one_of(st.sampled_from(ACTIVATIONS).map(act), st.builds(layernorm))


def pointwise(max_size=2):
    return st.lists(pointwise_ops, min_size=0, max_size=max_size)


@st.composite
def mlps(draw, presets=MLP_PRESETS):
    preset = draw(st.sampled_from(presets))
    L = draw(st.sampled_from((2, 3)))
    form = draw(st.sampled_from(("flat", "repeat_rest", "repeat_input")))
    n = 2 if form == "repeat_rest" else draw(st.integers(1, 3 if form == "flat" else 2))
    hidden = [(draw(st.sampled_from(WIDTHS)), draw(pointwise())) for _ in range(n)]
    return mlp(hidden, preset=preset, form=form, L=L)


@st.composite
def resnets(draw, presets=RESNET_PRESETS, depth_limit=True):
    preset = draw(st.sampled_from(presets))
    L = draw(st.sampled_from((2, 3)))
    widths = ["N"] if draw(st.booleans()) else [draw(st.sampled_from(("N", "2*N"))), "N"]
    limit = ("N", "L") if depth_limit and draw(st.booleans()) else ("N",)
    return resnet(draw(pointwise()), widths, draw(pointwise()), draw(pointwise()), tail=draw(pointwise()),
                  preset=preset, L=L, limit=limit)


@st.composite
def transformers(draw, limits=(("N",), ("H",))):
    """A token model: any mix of pre-LN / post-LN / LN-free attention and MLP branches (one to three per
    layer), per-token dense layers before the blocks, a bare attention after them, with or without the
    final layernorm, ops after the pool; N -> oo (alpha_A = 1) or H -> oo at fixed N (alpha_A = 1/2 or 1);
    muP, or with L in the limit a depth preset (depth_mup alpha_L = 1/2, completep alpha_L = 1)."""
    limit = draw(st.sampled_from(limits))
    alpha_A = 1.0 if "N" in limit else draw(st.sampled_from((0.5, 1.0)))
    preset = draw(st.sampled_from(RESNET_PRESETS)) if "L" in limit else "mup"
    acts = st.sampled_from(ACTIVATIONS).map(act)
    # a dense layer outside the stream trains at completep's global step L^(2 alpha_L - 1) = L: unstable
    # as L -> oo (the analysis says so); the other presets' step is L^0
    pre = [dense(WIDTH_TF), draw(acts)] if preset != "completep" and draw(st.booleans()) else []
    blocks = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            blocks.append(attention_branch(draw(st.booleans())))
        else:
            inner = draw(st.lists(acts, min_size=1, max_size=2))
            widths = draw(st.sampled_from((("N*H",), ("2*N*H",), ("N*H", "N*H"))))
            blocks.append(mlp_branch(draw(st.booleans()), inner, widths))
        if draw(st.booleans()):
            blocks.append(layernorm())  # post-LN
    # likewise an attention or a dense layer after the blocks, off the stream
    off_stream = preset != "completep"
    tail = [ATTENTION] if off_stream and draw(st.integers(0, 3)) == 0 else []
    post = draw(st.sampled_from(([], [], [layernorm()], *([[dense(WIDTH_TF), act("relu")]] if off_stream else []))))
    return transformer(pre, blocks, tail, post, final_ln=draw(st.booleans()), L=draw(st.sampled_from((1, 2))),
                       limit=limit, alpha_A=alpha_A, preset=preset)


def architectures(presets=MLP_PRESETS + RESNET_PRESETS, depth_limit=True):
    """Any composed architecture under one of `presets` (MLP presets and residual presets)."""
    mp = tuple(p for p in presets if p not in RESNET_PRESETS)
    rp = tuple(p for p in presets if p in RESNET_PRESETS)
    return st.one_of(*([mlps(mp)] if mp else []), *([resnets(rp, depth_limit)] if rp else []))


@st.composite
def repeat_twins(draw, presets=MLP_PRESETS, samples=2048, hold_input=True):
    """(rolled, unrolled): one random MLP layer body, as `repeat: {times: L}` and written out L times."""
    ops = draw(st.lists(pointwise_ops, min_size=1, max_size=2))
    return twin(draw(st.sampled_from(WIDTHS)), ops, preset=draw(st.sampled_from(presets)),
                L=draw(st.sampled_from((2, 3))), hold_input=hold_input, samples=samples)


def with_samples(arch: Arch, samples: int) -> Arch:
    return replace(arch, samples=samples)
