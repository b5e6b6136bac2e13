"""Properties: key order changes nothing; `--set` equals writing the value in the file."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from dmftc.spec import loads
from dmftc.spec.yamlpos import compose, to_plain

ROOT = Path(__file__).resolve().parents[2]
TEXTS = {p.stem: p.read_text() for p in sorted((ROOT / "specs").glob("*.yaml"))}
FAST = settings(max_examples=25, deadline=None)


def plain(text: str):
    tree, problems = compose(text, "t")
    assert not problems
    return to_plain(tree)


def dump(data) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def shuffled(data, draw, path=()):
    """`data` with every mapping's keys permuted (except `limit`, whose order is meaningful)."""
    if isinstance(data, list):
        return [shuffled(x, draw, (*path, i)) for i, x in enumerate(data)]
    if not isinstance(data, dict):
        return data
    keys = list(data) if path == ("limit",) else draw(st.permutations(list(data)))
    return {k: shuffled(data[k], draw, (*path, k)) for k in keys}


@FAST
@given(name=st.sampled_from(sorted(TEXTS)), data=st.data())
def test_key_order_changes_nothing(name, data):
    original = loads(TEXTS[name])
    permuted = loads(dump(shuffled(plain(TEXTS[name]), data.draw)))
    assert permuted == original
    assert permuted.raw == original.raw
    assert list(permuted.raw) == list(original.raw)


SETTINGS = [
    ("hyper.gamma0", st.sampled_from(["0.25", "1", "2.5", "1.0e-3"])),
    ("hyper.eta", st.decimals(min_value="0.001", max_value=10, places=3).map(str)),
    ("sizes.N", st.integers(1, 4096).map(str)),
    ("sizes.L", st.integers(1, 6).map(str)),
    ("training.steps", st.integers(1, 100).map(str)),
    ("training.lr", st.sampled_from(["eta", "eta/2", "0.1", "eta*gamma0**2"])),
    ("data.synthetic.P", st.integers(1, 16).map(str)),
    ("data.synthetic.seed", st.integers(0, 99).map(str)),
    ("data.synthetic.target", st.sampled_from(["linear", "random", "sign_linear"])),
    ("model[0].dense.out", st.sampled_from(["N", "2*N", "N + 1"])),
    ("parameterization.preset", st.sampled_from(["ntk", "sp", "mup", "mean_field"])),
    ("solver.samples", st.integers(1, 10**5).map(str)),
    ("limit", st.just("{N: inf, L: inf}")),
]


def put(data, path: str, value):
    """Set a dotted path with [i] indices in plain data."""
    parts = path.replace("[", ".[").split(".")
    node = data
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node.setdefault(part, {})
    node[parts[-1]] = value


@FAST
@given(choice=st.sampled_from(SETTINGS), data=st.data())
def test_set_equals_writing_it(choice, data):
    path, strategy = choice
    value = data.draw(strategy)
    text = TEXTS["mlp_mup_relu"]
    edited = plain(text)
    put(edited, path, plain(f"v: {value}")["v"])
    written = loads(dump(edited))
    overridden = loads(text, overrides=[f"{path}={value}"])
    assert overridden == written
    assert overridden.raw == written.raw


def test_set_creates_known_missing_keys():
    text = TEXTS["mlp_ntk_relu"]  # no solver section, no weights
    spec = loads(text, overrides=["solver.samples=17", "parameterization.weights.W1.lr=2", "limit.L=inf"])
    assert spec.solver.samples == 17
    assert spec.parameterization.overrides["W1"].lr == 2
    assert spec.limit == ("N", "L")


def test_set_last_one_wins_and_applies_before_validation():
    text = TEXTS["mlp_mup_relu"].replace("N: 1024", "N: 0")
    spec = loads(text, overrides=["sizes.N=5", "sizes.N=7"])
    assert spec.sizes["N"] == 7


def paths_of(data, prefix=()):
    """Every key path in plain data (to mutate one)."""
    yield prefix
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        yield from paths_of(value, (*prefix, key))


JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(TEXTS)), data=st.data())
def test_any_mutation_gives_a_spec_or_a_spec_error(name, data):
    from dmftc.errors import SpecError

    tree = plain(TEXTS[name])
    path = data.draw(st.sampled_from([p for p in paths_of(tree) if p]))
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = data.draw(JUNK)
    try:
        loads(dump(tree))
    except SpecError as err:
        assert err.problems and all(p.location is not None for p in err.problems)
