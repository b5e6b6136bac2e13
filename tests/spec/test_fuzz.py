"""A fuzzer over mutated example specs: load -> graph -> analyze raises only dmftc's own errors.

Each document starts from one of the example specs in `specs/` (its parsed tree,
``yaml.safe_load``) and is mutated: a scalar replaced by a hostile value (huge and tiny
numbers, nan/inf spellings, exponent strings, unicode look-alikes, control characters,
long strings), a subtree replaced by another type, keys deleted or added, ops swapped,
inserted or nested in repeats, expressions rewritten; the tree is dumped back to YAML
(``yaml.safe_dump``), and the text may be mutated again with YAML features (anchors and
aliases, merges, tags, sexagesimal and hex integers, directives, NUL bytes, tabs, a BOM,
deep nesting, truncation). Every document is run through `loads` (off the file system:
no ``data.file`` is ever written, and `base_dir` is an empty folder), `build_graph` and
`analyze`, and the errors and results are rendered. Anything raised that is not a
`DmftcError` fails the test with the document; so does a document that runs longer than
`HANG_S` seconds (a watchdog interrupts it: hypothesis' own deadline cannot stop a hang).

The default suite runs a few hundred documents, derandomized (the same ones every run);
`--runslow` runs thousands more. The plain tests at the end are the minimal documents of
the failures the fuzzer found, kept as regressions.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import signal
import threading
import traceback
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from dmftc.errors import DmftcError, LimitError, SpecError
from dmftc.graph import build_graph
from dmftc.scaling import analyze
from dmftc.spec import loads

ROOT = Path(__file__).resolve().parents[2]
TEXTS = {p.stem: p.read_text() for p in sorted((ROOT / "specs").glob("*.yaml"))}
TREES = {name: yaml.safe_load(text) for name, text in TEXTS.items()}
NAMES = sorted(TREES)

HANG_S = 5.0  # the watchdog: no document may take longer than this
DEADLINE = timedelta(seconds=3)  # hypothesis' per-document deadline: fails a slow one, cannot stop a hang


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=DEADLINE,
        derandomize=True,  # the same documents every run: a deterministic CI
        database=None,  # and no explain phase: nothing is written under .hypothesis
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        print_blob=False,
        # Drawing a document takes many small draws (a mutation path, its values) and the
        # constant hostile texts are large by design; neither is a slow or bad strategy.
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# ------------------------------------------------------------------ the watchdog
class Hang(BaseException):
    """Raised by the watchdog in the main thread; a BaseException so no `except Exception` swallows it."""


@contextmanager
def watchdog(seconds: float = HANG_S):
    """Interrupt the body after `seconds` (SIGALRM; pytest-xdist runs tests in the main thread)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:  # pragma: no cover - Windows, or a test runner that uses threads
        yield
        return

    def on_alarm(signum, frame):
        raise Hang(f"the document ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------ the property
def run_document(text: str, base_dir: Path, overrides=()):
    """load -> graph -> analyze (and render the result); None when a DmftcError was raised.

    Anything else, or a hang, fails the test with the document and the traceback.
    """
    try:
        with watchdog():
            try:
                spec = loads(text, "<fuzz>", overrides, base_dir=base_dir)
                graph = build_graph(spec)
                graph.describe()
                scaling = analyze(spec, graph)
                scaling.check()  # internally consistent (a ValueError otherwise)
                str(scaling)
                json.dumps(scaling.to_json())
                return scaling
            except DmftcError as err:
                err.render()
                str(err)
                return None
    except BaseException as exc:  # noqa: BLE001 - the point: nothing else may escape
        if isinstance(exc, (KeyboardInterrupt, SystemExit)) or type(exc).__module__.startswith("hypothesis"):
            raise
        shown = text if len(text) < 4000 else text[:4000] + f"... ({len(text)} characters)"
        pytest.fail(
            f"{type(exc).__name__} (not a DmftcError): {exc}\n"
            f"--- overrides: {list(overrides)!r}\n--- document ({len(text)} characters):\n{shown}\n"
            f"--- repr: {text[:2000]!r}\n--- traceback:\n{''.join(traceback.format_exception(exc))}",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    """An empty folder: a `data.file` the fuzzer never writes resolves here (and is missing)."""
    return tmp_path_factory.mktemp("fuzz_base")


@pytest.fixture(scope="module", autouse=True)
def datasets_read():
    """A `data.dataset` (specs/mlp_digits.yaml) imports scikit-learn and reads the set once per process (about
    2 s): done here, so that no document's deadline or watchdog counts it."""
    if importlib.util.find_spec("sklearn") is not None:
        loads((ROOT / "specs" / "mlp_digits.yaml").read_text())


# ------------------------------------------------------------------ hostile values
HUGE_AND_TINY = [
    10**400, -(10**400), 2**63, 2**64 + 1, -(2**63) - 1, 10**18, -1, 0, 1, 2,
    -0.0, 0.0, 1e308, -1e308, 1.7976931348623157e308, 1e-320, 5e-324, -5e-324, 1e-300, 0.1, 1e16 + 1.0,
    float("nan"), float("inf"), float("-inf"),
]  # fmt: skip
NUMBER_STRINGS = [
    "nan", "NaN", ".nan", "inf", "-inf", ".inf", "-.inf", "Infinity", "1e309",
    "1.0e99999999", "1.0e-9999999", "9e999999999", "1e+99999999", "0e99999999",
    "9" * 400, "0." + "0" * 400 + "1", "1" + "0" * 5000, "-0", "+0", "0.0e0",
    "1_000", "0x14", "0b10", "0o17", "017", "17:04", "1:30:00", "1.5e3", ".5", "5.", "1e3",
]  # fmt: skip
LOOKALIKES = [
    "ℕ", "Ｎ", "ｅｔａ", "eta\u200b", "N\u200d", "ɴ", "Ν", "η", "γ0", "gamma₀", "ＬＬ", "ｒｅｌｕ",
    "relu\u00a0", "mup\ufeff", "ｍｕｐ", "ｉｎｆ", "∞", "１０２４", "٣", "²", "½", "Ⅻ", "𝑁", "N\u0301",
    "\u202eN", "ß", "İ", "ǅ",
]  # fmt: skip
CONTROL = ["", " ", "\t", "\n", "\r", "\x00", "\x07", "\x1b[31m", "\x7f", "\x85", "\u2028", "\ufffe",
           "\ud800", "N\x00", "\x00N", "\U0010ffff"]  # fmt: skip
LONG = ["x" * 10_000, "N" * 501, "N+" * 249 + "N", "(" * 300 + "N" + ")" * 300, "a" * 100_000,
        "-" * 600 + "N", "é" * 3000]  # fmt: skip
EXPRESSIONS = [
    "N", "L", "H", "N/2", "2*N", "N**2", "2**(N/128)", "L - 1", "L-2", "N*H", "N**(-1/2)", "N**-0.5",
    "1/N", "0", "0*N", "-N", "N - N", "1/(N-N)", "N/0", "0**-1", "sqrt(N)", "sqrt(-N)", "exp(N)",
    "log(N)", "log(0)", "exp(exp(N))", "N**N", "2**N", "N**(1/N)", "N**L", "L**N", "N**100",
    "N**101", "2**4096", "10**10**10", "1.0e-4", "1e-320*N", "N**1e-300", "N**(10**-400)",
    "0.1+0.2", "N**0.5**2", "N^2", "2N", "N**", "N)", "(N", "__import__('os')",
    "__import__('os').system('true')", "().__class__", "N.real", "N[0]", "lambda: N", "N if N else 1",
    "N < 2", "N and L", "f'{N}'", "'N'", "b'N'", "1j", "N @ N", "N // 2", "N % 2", "~N", "not N",
    "max(N, 1)", "sqrt(N, 2)", "sqrt(*N)", "sqrt(x=N)", "eta", "gamma0", "beta0 / L**alpha_L",
    "N**(-alpha_A)", "eta*gamma0**2", "alpha_L", "ℕ", "ｅｔａ", "Ｎ*2", "N\u00a0+ 1", "N\n+ 1", "N # c",
    "N;N", "N = 1", "[N]", "{N}", "(N,)", "...", "None", "True", "N**(2**(2**(2**4)))",
    "(2**100)**(2**100)", "N**(1/3)*N**(2/3)", "log(N)/log(2)", "exp(log(N)/2)", "N**(log(2))",
    "1/N**0", "N**-100", "(N+1)**(1/2)", "sqrt(N**2 + N)", "N - sqrt(N**2 - N)", "(1+1/N)**N",
    "N**1.0e-300", "2**1.0e-300", "(N+1)**1.0e-300", "N**(1 + 1.0e-300)", "N**(1/3**60)", "1024**(1/3**60)",
]  # fmt: skip
SCALARS = HUGE_AND_TINY + NUMBER_STRINGS + LOOKALIKES + CONTROL + LONG + EXPRESSIONS + [
    True, False, None, "yes", "no", "on", "null", "~", "relu", "rleu", "mup", "sp", "ntk", "mean_field",
    "depth_mup", "completep", "mean", "max", "linear", "tanh_linear", "teacher_attention", "random",
    "float32", "float64", "float16", "mse", "gd", "adam", "float", "dmftc", "N", "inf", ".inf",
]  # fmt: skip
KEYS = [
    "dmftc", "name", "description", "sizes", "hyper", "model", "parameterization", "limit", "training",
    "data", "solver", "preset", "weights", "multiplier", "init_std", "lr", "steps", "loss", "optimizer",
    "synthetic", "P", "D", "S", "target", "seed", "samples", "tol", "max_iter", "damping", "dtype",
    "dense", "act", "repeat", "residual", "layernorm", "attention", "pool", "readout", "out", "name",
    "times", "body", "index", "scale", "branch", "heads", "key_dim", "logit_scale", "depth_steps",
    "N", "L", "H", "W0", "W1", "w", "embed", "attn0", "attn0_K", "x", "", " ", "__class__", "<<",
    "ℕ", "Ｎ", "ｅｔａ", "N\x00", "1", "null", "true", "é", "a" * 300, "dmftc ",
]  # fmt: skip

scalars = st.sampled_from(SCALARS) | st.integers() | st.floats() | st.text(max_size=12)
keys = st.sampled_from(KEYS) | st.text(max_size=6) | st.integers(-3, 3) | st.sampled_from([None, True, 1.5])
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=6,
)
ATOMS = ["N", "L", "H", "eta", "gamma0", "beta0", "alpha_L", "alpha_A", "1", "2", "0", "0.5", "1/2",
         "128", "1.0e-4", "10**400", "1e-320", "ell", "S", "D", "P"]  # fmt: skip
expressions = st.sampled_from(EXPRESSIONS) | st.recursive(
    st.sampled_from(ATOMS),
    lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**"]), inner).map(
        lambda t: f"({t[0]}){t[1]}({t[2]})"
    )
    | st.tuples(st.sampled_from(["sqrt", "exp", "log", "-"]), inner).map(lambda t: f"{t[0]}({t[1]})"),
    max_leaves=5,
)

OPS = [
    {"dense": {"out": "N"}}, {"dense": {"out": "2*N", "name": "W9"}}, {"dense": {"out": "N/2"}},
    {"dense": {"out": "N**2"}}, {"dense": {"out": "2**(N/128)"}}, {"dense": {"out": 1}},
    {"dense": {"out": "N", "name": "w"}}, {"dense": {"out": "N", "name": "W0"}}, {"dense": {}},
    {"dense": None}, {"dense": "N"}, {"dense": {"out": "N", "bias": True}},
    {"act": "relu"}, {"act": "tanh"}, {"act": "quadratic"}, {"act": "sigmoid"}, {"act": "erf"},
    {"act": "gelu"}, {"act": "linear"}, {"act": "rleu"}, {"act": None}, {"act": ["relu"]},
    {"layernorm": {}}, {"layernorm": None}, {"layernorm": {"eps": 1}},
    {"pool": "mean"}, {"pool": "max"}, {"readout": {}}, {"readout": None}, {"readout": {"name": "w2"}},
    {"attention": {"heads": "H", "key_dim": "N", "logit_scale": "N**(-1)"}},
    {"attention": {"heads": 1, "key_dim": "N", "logit_scale": "1/sqrt(N)", "name": "a"}},
    {"attention": {"heads": "N", "key_dim": "N", "logit_scale": "N**(-alpha_A)"}},
    {"residual": {"scale": "1/L", "branch": [{"act": "relu"}, {"dense": {"out": "N"}}]}},
    {"residual": {"scale": "1/sqrt(L)", "branch": []}},
    {"residual": {"scale": "1", "branch": [{"dense": {"out": "N"}}, {"act": "tanh"}]}},
    {"residual": {"scale": "N", "branch": [{"dense": {"out": "2*N"}}]}},
    {"repeat": {"times": "L", "body": [{"dense": {"out": "N"}}, {"act": "relu"}]}},
    {"repeat": {"times": "N", "body": [{"dense": {"out": "N"}}]}},
    {"repeat": {"times": 0, "body": [{"readout": {}}]}},
    {"repeat": {"times": "L", "body": []}},
    {"repeat": {"times": "L", "index": "i", "body": [{"residual": {"scale": "1/L", "branch": [
        {"dense": {"out": "N"}}]}}]}},
    {"dense": {"out": "N"}, "act": "relu"}, "relu", [], 7, None,
]  # fmt: skip
LIMITS = [
    {"N": "inf"}, {"N": "inf", "L": "inf"}, {"L": "inf", "N": "inf"}, {"L": "inf"}, {"H": "inf"},
    {"N": "inf", "H": "inf"}, {"D": "inf"}, {"P": "inf"}, {"S": "inf"}, {"eta": "inf"}, {"N": 1024},
    {"N": ".inf"}, {"N": float("inf")}, {"N": None}, {}, {"M": "inf"}, {"ℕ": "inf"}, ["N"], "N",
]  # fmt: skip


# ------------------------------------------------------------------ tree mutations
def _paths(node, prefix=()):
    """Every path (keys and list indices) into a plain tree, the root first."""
    yield prefix
    if isinstance(node, dict):
        for key, value in list(node.items()):
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


def _get(tree, path):
    for key in path:
        tree = tree[key]
    return tree


def _set(tree, path, value):
    if not path:
        return value
    _get(tree, path[:-1])[path[-1]] = value
    return tree


def _pick(draw, tree, want=None):
    """A path to a node of `tree` (of type `want`, if given), or None."""
    paths = [p for p in _paths(tree) if want is None or isinstance(_get(tree, p), want)]
    return draw(st.sampled_from(paths)) if paths else None


def m_scalar(draw, tree):
    """Replace a scalar (a leaf) with a hostile value."""
    path = _pick(draw, tree, (str, int, float, bool, type(None)))
    return tree if path is None else _set(tree, path, draw(scalars))


def _declared(tree) -> list:
    """The symbols a document declares (sizes, hyper) and the data sizes, to write valid formulas."""
    names = ["P", "D"]
    for section in ("sizes", "hyper"):
        if isinstance(tree, dict) and isinstance(tree.get(section), dict):
            names += [k for k in tree[section] if isinstance(k, str)]
    return sorted(set(names))


def expressions_in(symbols) -> st.SearchStrategy:
    """Formulas in the given symbols: the shapes that matter for power counting, combined."""
    sym = st.sampled_from(symbols)
    shapes = st.one_of(
        sym,
        st.sampled_from(["1", "2", "3", "0.5", "1/2", "128", "1.0e-4"]),
        st.tuples(sym, st.sampled_from(["{}/2", "2*{}", "{}**2", "2**({}/128)", "{} - 1", "{}**(-1/2)",
                                        "1/{}", "sqrt({})", "log({})", "exp({})", "{}**(1/3)", "{}+1",
                                        "({}+1)/2", "{}**0", "{}*{}", "{}**{}", "{}/{}",
                                        "{}**1.0e-300", "({}+1)**(1/3**60)"])).map(
            lambda t: t[1].format(t[0], t[0])),
    )
    return st.recursive(
        shapes,
        lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**"]), inner).map(
            lambda t: f"({t[0]}){t[1]}({t[2]})"),
        max_leaves=3,
    )


def m_expression(draw, tree):
    """Replace a value under an expression-valued key (or any leaf) with an expression."""
    exprs = ("out", "times", "scale", "heads", "key_dim", "logit_scale", "lr", "multiplier", "init_std")
    paths = [p for p in _paths(tree) if p and p[-1] in exprs] or [p for p in _paths(tree) if p]
    if not paths:
        return tree
    value = draw(expressions_in(_declared(tree)) if draw(st.integers(0, 3)) else expressions)
    return _set(tree, draw(st.sampled_from(paths)), value)


def m_retype(draw, tree):
    """Replace a subtree with another type: list <-> dict <-> scalar."""
    path = _pick(draw, tree)
    node = _get(tree, path)
    choices = [draw(junk), None, [], {}, "", 0]
    if isinstance(node, dict):
        choices += [list(node.values()), list(node.keys()), [node], list(node.items())]
    elif isinstance(node, list):
        choices += [{f"k{i}": v for i, v in enumerate(node)}, node[0] if node else None, {"items": node}]
    else:
        choices += [[node], {"value": node}, {node if isinstance(node, (str, int)) else "x": node}]
    value = draw(st.sampled_from(choices))
    return _set(tree, path, copy.deepcopy(value))


def m_delete(draw, tree):
    """Delete a key of a mapping or an item of a list."""
    path = _pick(draw, tree, (dict, list))
    node = None if path is None else _get(tree, path)
    if not node:
        return tree
    key = draw(st.sampled_from(list(node.keys()) if isinstance(node, dict) else list(range(len(node)))))
    del node[key]
    return tree


def m_add_key(draw, tree):
    """Insert a key (known elsewhere, unknown, odd) into a mapping."""
    path = _pick(draw, tree, dict)
    if path is None:
        return tree
    node = _get(tree, path)
    key = draw(keys)
    if key == "file":
        return tree
    node[key] = copy.deepcopy(draw(junk | st.sampled_from(OPS) | expressions))
    return tree


def m_share(draw, tree):
    """Put the same subtree object in two places: safe_dump writes an anchor and an alias."""
    a, b = _pick(draw, tree), _pick(draw, tree)
    if not a or not b or a[: len(b)] == b or b[: len(a)] == a:
        return tree
    node = _get(tree, a)
    if not isinstance(node, (dict, list)):
        return tree
    return _set(tree, b, node)


def m_ops(draw, tree):
    """Edit a list of ops (the model, a body, a branch): swap, insert, duplicate, move the readout."""
    lists = [p for p in _paths(tree) if isinstance(_get(tree, p), list)]
    if not lists:
        return tree
    ops = _get(tree, draw(st.sampled_from(lists)))
    how = draw(st.sampled_from(["swap", "insert", "duplicate", "reverse", "clear", "readout_first"]))
    if how == "swap" and len(ops) >= 2:
        i, j = draw(st.integers(0, len(ops) - 1)), draw(st.integers(0, len(ops) - 1))
        ops[i], ops[j] = ops[j], ops[i]
    elif how == "insert":
        ops.insert(draw(st.integers(0, len(ops))), copy.deepcopy(draw(st.sampled_from(OPS))))
    elif how == "duplicate" and ops:
        i = draw(st.integers(0, len(ops) - 1))
        ops.insert(i, copy.deepcopy(ops[i]))
    elif how == "reverse":
        ops.reverse()
    elif how == "clear":
        ops.clear()
    elif how == "readout_first" and ops:
        ops.insert(0, ops.pop())
    return tree


def m_nest(draw, tree):
    """Wrap a run of the model's ops in a repeat (or a residual), possibly several levels deep."""
    model = tree.get("model") if isinstance(tree, dict) else None
    if not isinstance(model, list) or not model:
        return tree
    i = draw(st.integers(0, len(model) - 1))
    j = draw(st.integers(i + 1, len(model)))
    body = model[i:j]
    formulas = expressions_in(_declared(tree)) if draw(st.integers(0, 3)) else expressions
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            index = draw(st.sampled_from(["ell", "i", "j", "k", "N", "ｉ"]))
            body = [{"repeat": {"times": draw(formulas), "body": body,
                                **({"index": index} if draw(st.integers(0, 3)) == 0 else {})}}]
        else:
            body = [{"residual": {"scale": draw(formulas), "branch": body}}]
    model[i:j] = body
    return tree


def m_deep(draw, tree):
    """Replace a subtree with a deeply nested one (lists, mappings or repeats)."""
    path = _pick(draw, tree)
    kind = draw(st.sampled_from(["list", "dict", "repeat"]))
    # bounded so that yaml.safe_dump's own recursion fits (the text mutations nest deeper)
    depth = draw(st.sampled_from([5, 20, 60] if kind == "repeat" else [10, 50, 200]))
    node = draw(st.sampled_from(["N", 1, None, {"readout": {}}]))
    for _ in range(depth):
        node = {"list": lambda n: [n], "dict": lambda n: {"a": n},
                "repeat": lambda n: {"repeat": {"times": 1, "body": [n]}}}[kind](node)
    return _set(tree, path, node)


def m_section(draw, tree):
    """Rewrite a section with a plausible but hostile alternative."""
    if not isinstance(tree, dict):
        return tree
    section = draw(st.sampled_from(["limit", "sizes", "hyper", "parameterization", "training", "data",
                                    "solver", "dmftc", "name"]))
    values = {
        "limit": LIMITS,
        "sizes": [{"N": 10**400}, {"N": 0}, {"N": -1}, {"N": 2**63}, {"N": 1.5}, {"N": "1024"},
                  {"N": 1024, "L": 10**6}, {"N": 1, "L": 1, "H": 1}, {"ℕ": 4}, {"N": 4, "P": 9},
                  {"N": 4, "D": 16, "S": 4}, {"sqrt": 4}, {"class": 4}, {"N": 4, "eta": 1}, {"N": True}],
        "hyper": [{"eta": 1e-320}, {"eta": 1e308}, {"eta": 10**400}, {"eta": 0}, {"eta": -0.0},
                  {"eta": float("nan")}, {"eta": "1.0e99999999"}, {"eta": 0.1, "gamma0": 1e-300},
                  {"eta": 0.5, "alpha_L": 10**400}, {"eta": 0.5, "alpha_A": 1e-320},
                  {"eta": 0.5, "alpha_L": 0.3333333333333333}, {"eta": 0.5, "alpha_A": 1e16 + 1.0},
                  {"eta": 0.5, "gamma0": 1, "beta0": 1, "alpha_L": -1, "alpha_A": 7}],
        "parameterization": [{"preset": None}, {"preset": "sp", "weights": {"w": {"init_std": 0}}},
                             {"preset": "mup", "weights": {"W0": {"lr": "0", "multiplier": "N**2"}}},
                             {"preset": None, "weights": {"W0": {"multiplier": 1, "init_std": 1, "lr": 1}}},
                             {"preset": "mup", "weights": {"w": {"multiplier": "2**(N/128)"}}},
                             {"preset": "ntk", "weights": {"zz": {"lr": 1}}}, {"weights": None},
                             {"preset": "depth_mup"}, {"preset": "completep"}, {"preset": "mean_field"}],
        "training": [{"lr": "eta", "steps": 10**400}, {"lr": 0, "steps": 1}, {"lr": "N", "steps": 1},
                     {"lr": "1/N", "steps": 20}, {"lr": "eta*N**2", "steps": 2}, {"lr": "2**(N/128)", "steps": 3},
                     {"lr": "eta", "steps": 0}, {"lr": "eta", "steps": 1.0}, {"lr": "exp(-N)", "steps": 1}],
        "data": [{"synthetic": {"P": 10**400, "D": 16}}, {"synthetic": {"P": 8, "D": 0}},
                 {"synthetic": {"P": 8, "D": 16, "S": 4}}, {"synthetic": {"P": 8, "D": 16, "S": 1,
                                                                         "target": "teacher_attention"}},
                 {"synthetic": {"P": 8, "D": 16, "seed": 2**64}}, {"synthetic": {"P": 8, "D": 16, "seed": -1}},
                 {"synthetic": {"P": 8, "D": 16, "seed": 10**400}}, {"synthetic": None}, {},
                 {"synthetic": {"P": 8, "D": 16, "target": "ｒａｎｄｏｍ"}}],
        "solver": [{"samples": 10**400}, {"tol": 1e-320}, {"tol": float("nan")}, {"damping": 0},
                   {"seed": 2**64}, {"seed": -1}, {"dtype": "float16"}, {"max_iter": 0}, {"depth_steps": 0}],
        "dmftc": [1, 2, 1.0, "1", 10**400, None, True],
        "name": ["x", "class", "ｎａｍｅ", "a-b", "", "_", "a" * 1000, "None", "__import__", "λ"],
    }[section]
    tree[section] = copy.deepcopy(draw(st.sampled_from(values)))
    return tree


#: the well-formed ops of OPS (each valid somewhere: attention and pool need token data)
VALID_OPS = [op for op in OPS if isinstance(op, dict) and len(op) == 1 and op not in (
    {"dense": {}}, {"dense": None}, {"dense": "N"}, {"dense": {"out": "N", "bias": True}}, {"act": "rleu"},
    {"act": None}, {"act": ["relu"]}, {"layernorm": {"eps": 1}}, {"pool": "max"})]


def m_valid_op(draw, tree):
    """Insert a well-formed op into, or swap two ops of, a list of ops (to reach the analysis)."""
    lists = [p for p in _paths(tree) if p and p[-1] in ("model", "body", "branch")
             and isinstance(_get(tree, p), list)]
    if not lists:
        return tree
    ops = _get(tree, draw(st.sampled_from(lists)))
    if ops and draw(st.booleans()):
        i, j = draw(st.integers(0, len(ops) - 1)), draw(st.integers(0, len(ops) - 1))
        ops[i], ops[j] = ops[j], ops[i]
    else:
        ops.insert(draw(st.integers(0, len(ops))), copy.deepcopy(draw(st.sampled_from(VALID_OPS))))
    return tree


TREE_MUTATIONS = [m_scalar, m_scalar, m_expression, m_expression, m_retype, m_delete, m_add_key, m_share,
                  m_ops, m_ops, m_nest, m_deep, m_section, m_section]  # fmt: skip


#: mutations that keep the document well formed more often: math, ops, limits and scales.
PLAUSIBLE_MUTATIONS = [m_expression, m_expression, m_valid_op, m_valid_op, m_nest, m_section]


@st.composite
def mutated_trees(draw, max_mutations=4, mutations=TREE_MUTATIONS):
    name = draw(st.sampled_from(NAMES))
    tree = copy.deepcopy(TREES[name])
    for _ in range(draw(st.integers(1, max_mutations))):
        tree = draw(st.sampled_from(mutations))(draw, tree)
    return name, tree


def dump(draw, tree) -> str:
    return yaml.safe_dump(
        tree,
        sort_keys=False,
        allow_unicode=draw(st.booleans()),
        default_flow_style=draw(st.sampled_from([False, None, True])),
        width=draw(st.sampled_from([80, 10**6])),
    )


# ------------------------------------------------------------------ text mutations
YAML_TOKENS = [
    "17:04", "1:30:00", "-1:00", "0x14", "0X14", "0b10", "0o17", "017", "09", "+12", "1_000", "1__0",
    ".5", "1e3", "1.0e+3", "1.0e99999999", ".NaN", ".Inf", "-.INF", "~", "null", "Null", "yes", "No",
    "on", "OFF", "y", "n", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "=", "<<", "'<<'",
    '!!python/object/apply:os.system ["true"]', "!!python/name:os.system", "!!python/tuple [1, 2]",
    "!!binary aGVsbG8=", "!!set {a: null}", "!!omap [a: 1]", "!!pairs [a: 1]", "!!str 5", '!!int "12"',
    "!!int abc", '!!float "1e5"', "!!float nan", "!!bool maybe", "!!null x", "!!map {}", "!!seq []",
    "!!timestamp 2001-12-14", "!custom 1", "!<tag:yaml.org,2002:int> 5", "!<!> 5", "! 5", "&a 5", "*a",
    "*undefined", "&r [*r]", "&m {k: *m}", "|\n  text", ">-\n  folded", '"\\x00"', '"\\uD800"',
    '"\\U0010FFFF"', '"\\N"', "'it''s'", "? complex", "[1, 2", "{a: 1", "[[[[[[1]]]]]]",
    "{? [1, 2] : 3}", "{? {a: 1} : 3}", "@reserved", "`reserved", "%", "-", "- - -", "[]", "{}", "''",
    '""', "#", "N #comment", "\t5", "5\t", "\x00", "\ufeff5", "１０２４", "ｒｅｌｕ",
]  # fmt: skip
CHARS = list(":-[]{}&*!|>%@`#\"',?\n \t\r\x00\ufeff\u2028\x85\\")
LOOKALIKE_OF = {"N": "Ｎ", ":": "：", "-": "‐", " ": "\u00a0", "e": "е", "a": "а", "o": "ο", "1": "１",
                "{": "｛", "[": "［", "i": "і", "_": "＿"}  # fmt: skip
VALUE = re.compile(r"(?m)(:[ ]+)([^\s{}\[\],#][^\n,{}\[\]#]*?)(\s*(?:#.*)?$|,|\})")


def _pos(draw, text):
    return draw(st.integers(0, len(text)))


def t_token(draw, text):
    """Replace a scalar value with a YAML feature (tags, sexagesimal, hex, aliases, ...)."""
    spots = list(VALUE.finditer(text))
    if not spots:
        return text
    m = draw(st.sampled_from(spots))
    token = draw(st.sampled_from(YAML_TOKENS))
    return text[: m.start(2)] + token + text[m.end(2):]


def t_alias(draw, text):
    """Anchor one value and alias it elsewhere; or an anchored mapping merged with `<<`."""
    spots = list(VALUE.finditer(text))
    if len(spots) < 2:
        return text
    a, b = sorted(draw(st.lists(st.sampled_from(spots), min_size=2, max_size=2, unique_by=lambda m: m.start())),
                  key=lambda m: m.start())
    if draw(st.booleans()):
        return (text[: a.start(2)] + "&x " + text[a.start(2): b.start(2)] + "*x" + text[b.end(2):])
    head = "defaults: &d {N: 8, L: 3, eta: 0.25, out: N, times: 2}\n"
    merged = text.replace("{", "{<<: *d, ", 1) if "{" in text else text.replace("\n  ", "\n  <<: *d\n  ", 1)
    return head + merged


def t_char(draw, text):
    """Insert, delete or replace one character (with a YAML-significant or invisible one)."""
    i = _pos(draw, text)
    how = draw(st.sampled_from(["insert", "delete", "lookalike"]))
    if how == "insert":
        return text[:i] + draw(st.sampled_from(CHARS) | st.characters()) + text[i:]
    if how == "delete":
        return text[:i] + text[i + 1:]
    spots = [k for k, ch in enumerate(text) if ch in LOOKALIKE_OF]
    if not spots:
        return text
    k = draw(st.sampled_from(spots))
    return text[:k] + LOOKALIKE_OF[text[k]] + text[k + 1:]


def t_lines(draw, text):
    """Duplicate (a duplicate key), delete, swap or re-indent (tabs) a line."""
    lines = text.split("\n")
    i = draw(st.integers(0, len(lines) - 1))
    how = draw(st.sampled_from(["duplicate", "delete", "swap", "tab", "dedent", "indent"]))
    if how == "duplicate":
        lines.insert(i, lines[i])
    elif how == "delete":
        del lines[i]
    elif how == "swap":
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    elif how == "tab":
        lines[i] = "\t" + lines[i].lstrip(" ")
    elif how == "dedent":
        lines[i] = lines[i].lstrip()
    else:
        lines[i] = "  " + lines[i]
    return "\n".join(lines)


def t_frame(draw, text):
    """Whole-text features: BOM, directives, documents, line endings, truncation, NUL."""
    how = draw(st.sampled_from(["bom", "yaml11", "yaml12", "tag", "docs", "end", "crlf", "cr", "nel",
                                "truncate", "nul", "nul_end", "comment_only", "empty", "bom_mid"]))
    if how == "bom":
        return "\ufeff" + text
    if how == "yaml11":
        return "%YAML 1.1\n---\n" + text
    if how == "yaml12":
        return "%YAML 1.2\n---\n" + text
    if how == "tag":
        return "%TAG !py! tag:yaml.org,2002:python/\n---\n" + text.replace("relu", "!py!name:os.system", 1)
    if how == "docs":
        return text + "\n---\n" + text
    if how == "end":
        return text + "\n...\n" + draw(st.sampled_from(["", "garbage: [", "dmftc: 2"]))
    if how == "crlf":
        return text.replace("\n", "\r\n")
    if how == "cr":
        return text.replace("\n", "\r")
    if how == "nel":
        return text.replace("\n", draw(st.sampled_from(["\x85", "\u2028", "\u2029"])))
    if how == "truncate":
        return text[: _pos(draw, text)]
    if how == "nul":
        i = _pos(draw, text)
        return text[:i] + "\x00" + text[i:]
    if how == "nul_end":
        return text + "\x00"
    if how == "comment_only":
        return "# nothing\n"
    if how == "empty":
        return draw(st.sampled_from(["", " ", "\n", "---", "...", "~", "[]", "{}", "0", "'x'"]))
    i = _pos(draw, text)
    return text[:i] + "\ufeff" + text[i:]


def t_nesting(draw, text):
    """A value replaced by deep flow or block nesting, a wide flat collection, or an alias bomb."""
    spots = list(VALUE.finditer(text))
    if not spots:
        return text
    m = draw(st.sampled_from(spots))
    depth = draw(st.sampled_from([20, 100, 1000, 5000, 20000]))
    how = draw(st.sampled_from(["flow_list", "flow_map", "block", "laughs", "wide_list", "wide_map"]))
    width = draw(st.sampled_from([100, 3000, 30_000]))
    if how == "wide_list":  # a large flat document: PyYAML's pure-Python cost per token
        value = "[" + ", ".join(["1"] * width) + "]"
    elif how == "wide_map":
        value = "{" + ", ".join(f"k{i}: {i}" for i in range(width)) + "}"
    elif how == "flow_list":
        value = "[" * depth + "1" + "]" * depth
    elif how == "flow_map":
        value = "{a: " * depth + "1" + "}" * depth
    elif how == "block":
        value = "".join("\n" + " " * (2 * k + 4) + "a:" for k in range(min(depth, 2000))) + " 1"
    else:
        head = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * 10)}]\n" for k in range(1, 9))
        return head + text[: m.start(2)] + "*l8" + text[m.end(2):]
    return text[: m.start(2)] + value + text[m.end(2):]


TEXT_MUTATIONS = [t_token, t_token, t_alias, t_char, t_lines, t_frame, t_nesting]


@st.composite
def mutated_texts(draw):
    """A mutated tree, dumped, then mutated as text 1-3 times."""
    _, tree = draw(mutated_trees(max_mutations=2))
    if isinstance(tree, dict) and isinstance(tree.get("data"), dict) and "file" in tree["data"]:
        del tree["data"]["file"]
    text = dump(draw, tree)
    for _ in range(draw(st.integers(1, 3))):
        text = draw(st.sampled_from(TEXT_MUTATIONS))(draw, text)
    return text


@st.composite
def tree_documents(draw, mutations=TREE_MUTATIONS):
    _, tree = draw(mutated_trees(mutations=mutations))
    if isinstance(tree, dict) and isinstance(tree.get("data"), dict) and "file" in tree["data"]:
        del tree["data"]["file"]  # off the file system: data files are out of scope
    return dump(draw, tree)


OVERRIDE_PATHS = ["hyper.eta", "hyper.gamma0", "sizes.N", "sizes.L", "training.lr", "training.steps",
                  "model[0].dense.out", "model[2].repeat.times", "limit", "limit.L", "solver.seed",
                  "parameterization.preset", "parameterization.weights.w.lr", "data.synthetic.P",
                  "model[9].dense.out", "model", "name", "", ".", "[0]", "model[-1]",
                  "model[99999999999999999999]", "ｈｙｐｅｒ.eta", "hyper.ｅｔａ", "hyper..eta", "sizes.N.x",
                  "a" * 300]  # fmt: skip


@st.composite
def overrides(draw):
    out = []
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(OVERRIDE_PATHS) | st.text(max_size=10))
        value = draw(st.sampled_from(YAML_TOKENS + NUMBER_STRINGS + EXPRESSIONS) | st.text(max_size=10))
        out.append(draw(st.sampled_from([f"{path}={value}", f"{path}", f"={value}", f"{path}=={value}"])))
    return out


# ------------------------------------------------------------------ the fuzz tests
#: documents per test: the default suite (~10 s in one process) and the slow suite (--runslow)
DEFAULT = {"trees": 250, "plausible": 100, "texts": 150, "overrides": 50, "examples": 50}  # 600
SLOW = {"trees": 3000, "plausible": 2000, "texts": 2000, "overrides": 500, "examples": 500}  # 8000


def test_the_examples_pass_unmutated(base_dir):
    for name, text in TEXTS.items():
        assert run_document(text, base_dir) is not None, name


@_settings(DEFAULT["trees"])
@given(text=tree_documents())
def test_fuzz_mutated_trees(text, base_dir):
    run_document(text, base_dir)


@_settings(DEFAULT["plausible"])
@given(text=tree_documents(PLAUSIBLE_MUTATIONS))
def test_fuzz_plausible_trees(text, base_dir):
    """Mutations that keep more documents valid, so that more of them reach the graph and the analysis."""
    run_document(text, base_dir)


@_settings(DEFAULT["texts"])
@given(text=mutated_texts())
def test_fuzz_mutated_texts(text, base_dir):
    run_document(text, base_dir)


@_settings(DEFAULT["overrides"])
@given(name=st.sampled_from(NAMES), sets=overrides())
def test_fuzz_overrides(name, sets, base_dir):
    run_document(TEXTS[name], base_dir, sets)


@_settings(DEFAULT["examples"])
@given(name=st.sampled_from(NAMES), data=st.data())
def test_fuzz_expressions_in_examples(name, data, base_dir):
    """Every expression-valued entry of an example rewritten at once (valid YAML, hostile math)."""
    _rewrite_expressions(name, data, base_dir)


def _rewrite_expressions(name, data, base_dir):
    tree = copy.deepcopy(TREES[name])
    for path in [p for p in _paths(tree) if p and p[-1] in ("out", "times", "scale", "heads", "key_dim",
                                                            "logit_scale", "lr")]:
        if data.draw(st.booleans()):
            tree = _set(tree, path, data.draw(expressions_in(_declared(tree)) | expressions))
    run_document(yaml.safe_dump(tree, sort_keys=False), base_dir)


@pytest.mark.slow
@_settings(SLOW["trees"])
@given(text=tree_documents())
def test_fuzz_mutated_trees_slow(text, base_dir):
    run_document(text, base_dir)


@pytest.mark.slow
@_settings(SLOW["plausible"])
@given(text=tree_documents(PLAUSIBLE_MUTATIONS))
def test_fuzz_plausible_trees_slow(text, base_dir):
    run_document(text, base_dir)


@pytest.mark.slow
@_settings(SLOW["texts"])
@given(text=mutated_texts())
def test_fuzz_mutated_texts_slow(text, base_dir):
    run_document(text, base_dir)


@pytest.mark.slow
@_settings(SLOW["overrides"])
@given(name=st.sampled_from(NAMES), sets=overrides())
def test_fuzz_overrides_slow(name, sets, base_dir):
    run_document(TEXTS[name], base_dir, sets)


@pytest.mark.slow
@_settings(SLOW["examples"])
@given(name=st.sampled_from(NAMES), data=st.data())
def test_fuzz_expressions_in_examples_slow(name, data, base_dir):
    _rewrite_expressions(name, data, base_dir)


def test_watchdog_stops_a_hang():
    import time

    with pytest.raises(Hang):
        with watchdog(0.2):
            time.sleep(5)


# ------------------------------------------------------------------ regressions (minimal documents)
def _replace(name: str, old: str, new: str) -> str:
    text = TEXTS[name]
    assert old in text, (name, old)
    return text.replace(old, new, 1)


def _analyze_text(text: str):
    spec = loads(text)
    return analyze(spec, build_graph(spec))


@pytest.mark.parametrize("width", ["2**(N/128)", "N**(N/1024)"])
def test_a_width_that_is_no_power_of_n_is_named_as_such(width):
    """It was read as N^0 (2 is no power of N) and reported as 'grows as N^1/2, scale by N^-1/2'."""
    text = _replace("mlp_mup_relu", "out: N, name: W0", f"out: {width}, name: W0")
    with pytest.raises(LimitError) as info:
        _analyze_text(text)
    message = str(info.value)
    assert f"{width} is not a power of N" in message and "grows faster than every power of N" in message
    assert "never in an exponent" in message and "N^1/2" not in message


@pytest.mark.parametrize("lr, how", [("eta*exp(N/1000)", "grows"), ("eta*2**(-N/1000)", "decays")])
def test_a_learning_rate_that_is_no_power_of_n_is_named_as_such(lr, how):
    """exp(N) gave 'the exponent oo is not a number; give the hyperparameters numeric values'."""
    with pytest.raises(LimitError) as info:
        _analyze_text(_replace("mlp_mup_relu", "lr: eta", f"lr: {lr}"))
    assert "is not a power of N" in str(info.value) and f"{how} faster than every power" in str(info.value)
    assert "hyperparameters" not in str(info.value)


def test_powers_of_n_with_logs_or_constant_limits_still_count():
    """A finite lim log(x)/log(N) is still a power: (1 + 1/N)**N -> e, log(N) ~ N^0."""
    for lr in ("eta*(1 + 1/N)**N", "eta*log(N)"):
        assert _analyze_text(_replace("mlp_mup_relu", "lr: eta", f"lr: {lr}")).regime == "feature_learning"


def _refused_fast(text: str, needle: str) -> None:
    import time

    start = time.perf_counter()
    with pytest.raises(SpecError) as info, watchdog():
        loads(text)
    assert needle in str(info.value)
    assert time.perf_counter() - start < 2.0  # each took 2-10 s before it was bounded


def test_deep_brackets_are_refused_fast():
    """PyYAML's scanner is quadratic in the flow depth: 1000 levels of [ took 2-4 s, refused only then."""
    for opening, closing in (("[", "]"), ("{a: ", "}")):
        value = opening * 1000 + "1" + closing * 1000
        text = _replace("mlp_mup_tanh", "out: N}", f"out: {value}}}")
        _refused_fast(text, "nested too deeply (brackets more than 100 deep)")
    with pytest.raises(SpecError) as info:  # 99 levels are read (then `x` is an unknown key)
        loads(_replace("mlp_mup_tanh", "out: N}", "out: N, x: " + "[" * 99 + "]" * 99 + "}"))
    assert "unknown key 'x'" in str(info.value) and "nested" not in str(info.value)


def test_a_large_flat_document_is_refused_fast():
    """PyYAML composes ~100 KB/s: a 1 MiB list (under the size limit) took 10 s before the nodes were counted."""
    _refused_fast("x: [" + "1," * 520_000 + "1]", "spec too large: more than 10,000 YAML nodes")
    _refused_fast("x: {" + "a: 1," * 200_000 + "}", "spec too large: more than 10,000 YAML nodes")


def test_an_alias_bomb_is_refused_fast():
    """Walking 100,000 expanded alias nodes took 1.6 s (4 s with another process on the core)."""
    head = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * 10)}]\n" for k in range(1, 9))
    _refused_fast(head + TEXTS["mlp_mup_tanh"], "aliases expand too far")


@pytest.mark.parametrize("lr, why", [
    ("eta*N**(-L)", "the exponent 1 - L depends on the size L; write a numeric exponent"),
    ("eta*N**log(2)", "the exponent log(2) + 1 is irrational; write a rational exponent"),
])
def test_an_exponent_that_is_no_rational_number_says_why(lr, why):
    """Both said 'give the hyperparameters in its exponents numeric values', though neither has one."""
    with pytest.raises(LimitError) as info:
        _analyze_text(_replace("mlp_mup_relu", "lr: eta", f"lr: {lr}"))
    assert why in str(info.value) and "hyperparameters" not in str(info.value)


@pytest.mark.parametrize("model", ["[{readout: {}}]", "[{act: relu}, {readout: {}}]"])
def test_a_model_without_hidden_layers_is_a_lazy_linear_model(model):
    """The lazy verdict's sentence named the largest hidden feature change: KeyError None without any."""
    text = TEXTS["resnet_completep"]
    start, end = text.index("model:"), text.index("parameterization:")
    scaling = _analyze_text(text[:start] + f"model: {model}\n" + text[end:])
    scaling.check()
    assert scaling.regime == "lazy" and "the model has no hidden layer" in scaling.reasons[0]


def test_a_repeat_count_with_a_tiny_exponent_is_counted_in_floats():
    """times: N**1e-300 is 1 at N = 1024, but int() of the exact 1024**(1/10**300) ran for ever (a hang)."""
    text = _replace("mlp_ntk_relu", "times: L - 1", 'times: "N**1.0e-300"').replace(
        "limit: {N: inf}", "limit: {L: inf}")
    with watchdog():
        assert _analyze_text(text).regime in ("feature_learning", "lazy")


@pytest.mark.parametrize("lr", ["N - sqrt(N**2 - N)", "eta*N*(1 - sqrt(1 - 1/N))"])
def test_leading_terms_that_cancel_are_counted_by_their_limit(lr):
    """Both are O(1) (about 1/2 and eta/2); the leading terms' power N^1 made the limit 'unstable'."""
    scaling = _analyze_text(_replace("mlp_mup_relu", "lr: eta", f"lr: {lr}"))
    assert scaling.regime == "feature_learning" and "a fixed learning rate" in scaling.reasons[0]
