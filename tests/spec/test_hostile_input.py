"""Hostile input: every bad spec, spec path or data file is a short `SpecError`, found fast.

Nothing here may hang, allocate gigabytes or escape as an internal error (exit 2).
Calls that could hang run in a daemon thread with a deadline (`quick`).
"""

from __future__ import annotations

import io
import os
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dmftc.errors import SpecError
from dmftc.spec import DataFile, load, load_data, loads
from dmftc.spec import data as data_module

from spec_texts import BASE

ROOT = Path(__file__).resolve().parents[2]
SYNTH = "synthetic: {P: 4, D: 8, target: tanh_linear, seed: 0}"


def quick(fn, seconds: float = 1.0):
    """`fn()` run in a daemon thread: its result or exception, failing if it takes over `seconds`."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    start = time.perf_counter()
    thread.start()
    thread.join(max(5.0, 5 * seconds))
    elapsed = time.perf_counter() - start
    assert not thread.is_alive(), f"still running after {elapsed:.1f} s"
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    return box.get("error", box.get("value"))


def short(err: BaseException) -> str:
    """The rendered SpecError, checked to be one screen with short lines."""
    assert isinstance(err, SpecError), f"{type(err).__name__}: {str(err)[:300]}"
    message = err.render()
    assert len(message.splitlines()) < 25, message[:2000]
    # the loader cuts every field to 300 characters; a line also holds the (temporary) file's path
    assert max(len(line) for line in message.splitlines()) <= 300 + 100, message[:2000]
    assert len(message) <= 2000, message[:2000]
    return message


def bad(text: str, **kw) -> str:
    """The short message of the SpecError that loading `text` raises (within a second)."""
    return short(quick(lambda: loads(text, **kw)))


# ---------------------------------------------------------------- 1. numbers
@pytest.mark.parametrize(
    "old, new, path",
    [
        ("lr: eta", "lr: 1.0e99999999", "training.lr"),
        ("lr: eta", "lr: 1.0e+99999999", "training.lr"),
        ("lr: eta", "lr: 1.0e-99999999", "training.lr"),
        ("lr: eta", "lr: '0e99999999 + eta'", "training.lr"),
        ("lr: eta", "lr: \"eta * 1e99999999\"", "training.lr"),
        ("times: L - 1", "times: L - 1e-400", "model[2].repeat.times"),
        ("eta: 0.5", "eta: 1.0e+99999999", "hyper.eta"),
        ("eta: 0.5", "eta: 1.0e-99999", "hyper.eta"),
    ],
    ids=["str", "float", "underflow", "zero_mantissa", "quoted", "expr_underflow", "hyper",
         "hyper_underflow"],
)
def test_huge_decimal_exponent_is_refused_fast(old, new, path):
    message = bad(BASE.replace(old, new, 1))
    assert f": {path}: " in message and "float range" in message, message


@pytest.mark.parametrize(
    "old, new, path",
    [
        ("N: 64", "N: " + "9" * 309, "sizes.N"),
        ("eta: 0.5", "eta: " + "9" * 309, "hyper.eta"),
        ("P: 4", "P: " + "9" * 309, "data.synthetic.P"),
        ("N: 64", "N: " + "9" * 20, "sizes.N"),
        ("N: 64", "N: !!int " + "9" * 5000, "sizes.N"),
    ],
    ids=["size", "hyper", "synthetic", "20_digits", "tagged_5000"],
)
def test_huge_integer_is_refused(old, new, path):
    message = bad(BASE.replace(old, new, 1))
    assert f": {path}: integer too large" in message and "2**63" in message, message


def test_5000_digit_integer_message_is_short():
    message = bad(BASE.replace("N: 64", "N: " + "7" * 5000, 1))
    assert "7" * 40 in message and "7" * 80 not in message and "5000 characters" in message, message


def test_huge_integer_in_an_expression_is_refused():
    message = bad(BASE.replace("lr: eta", "lr: \"1" + "0" * 400 + " * eta\"", 1))
    assert ": training.lr: " in message and "float range" in message, message


def test_override_index_beyond_the_digit_limit():
    message = short(quick(lambda: loads(BASE, overrides=["model[" + "9" * 5000 + "].act=tanh"])))
    assert "model" in message and "5000 characters" in message, message


def test_largest_integer_still_loads():
    spec = loads(BASE.replace("steps: 5", f"steps: {2**63 - 1}", 1))
    assert spec.training.steps == 2**63 - 1


# ------------------------------------------------------------------ 2. seeds
@pytest.mark.parametrize(
    "old, new, path",
    [
        ("training:", "solver: {seed: 1180591620717411303424}\ntraining:", "solver.seed"),
        ("seed: 0}", "seed: 1180591620717411303424}", "data.synthetic.seed"),
        ("training:", "solver: {seed: 4294967296}\ntraining:", "solver.seed"),
        ("seed: 0}", "seed: 4294967296}", "data.synthetic.seed"),
    ],
    ids=["solver_2_70", "synthetic_2_70", "solver_2_32", "synthetic_2_32"],
)
def test_seed_out_of_range(old, new, path):
    message = bad(BASE.replace(old, new, 1))
    assert f": {path}: seed out of range" in message and "2**32" in message, message


def test_largest_seed_loads():
    text = BASE.replace("seed: 0}", "seed: 4294967295}")
    text = text.replace("training:", "solver: {seed: 4294967295}\ntraining:")
    spec = loads(text)
    assert spec.solver.seed == spec.data.seed == 2**32 - 1


# ------------------------------------------------------------- 3. data files
def data_spec(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(BASE.replace(SYNTH, f"file: {name}"))
    return path


def npy_header(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    """An .npy version 1.0 header (no data) claiming an array of `shape`."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def zip_with(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)


def y_member(n: int) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.zeros(n))
    return buffer.getvalue()


def test_data_file_that_is_a_directory(tmp_path):
    (tmp_path / "d.npz").mkdir()
    message = short(quick(lambda: load(data_spec(tmp_path, "d.npz"))))
    assert ": data.file: data file 'd.npz' is a directory" in message, message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_data_file_that_is_a_fifo_is_never_opened(tmp_path):
    os.mkfifo(tmp_path / "f.npz")
    message = short(quick(lambda: load(data_spec(tmp_path, "f.npz"))))
    assert "data file 'f.npz' is not a regular file (a FIFO)" in message, message


def test_data_file_symlink_to_a_device(tmp_path):
    if not Path("/dev/zero").exists():
        pytest.skip("needs /dev/zero")
    (tmp_path / "z.npz").symlink_to("/dev/zero")
    message = short(quick(lambda: load(data_spec(tmp_path, "z.npz"))))
    assert "is not a regular file (a character device)" in message, message


def test_data_file_name_with_a_nul(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(BASE.replace(SYNTH, 'file: "a\\0b.npz"'))
    message = short(quick(lambda: load(path)))
    assert ": data.file: " in message and "NUL" in message, message


def test_npz_member_header_claiming_728_tib(tmp_path):
    zip_with(tmp_path / "huge.npz", {"X.npy": npy_header((10**7, 10**7)), "y.npy": npy_header((10**7,))})
    message = short(quick(lambda: load(data_spec(tmp_path, "huge.npz"))))
    assert "X and y take 728 TiB as float64, more than the limit of 2 GiB" in message, message


def test_npy_file_claiming_728_tib(tmp_path):
    (tmp_path / "huge.npy").write_bytes(npy_header((10**7, 10**7)))
    message = short(quick(lambda: load(data_spec(tmp_path, "huge.npy"))))
    assert "huge.npy is an .npy file" in message and "an .npz with X" in message, message


def test_npz_member_shorter_than_its_header(tmp_path):
    zip_with(tmp_path / "short.npz", {"X.npy": npy_header((1000, 1000)), "y.npy": y_member(1000)})
    message = short(quick(lambda: load(data_spec(tmp_path, "short.npz"))))
    assert "X in short.npz" in message and "holds only" in message, message


def test_zip_bomb_is_refused_from_its_headers(tmp_path, monkeypatch):
    """The cap is checked against the member headers; nothing is inflated."""
    np.savez_compressed(tmp_path / "bomb.npz", X=np.zeros((2000, 1000)), y=np.zeros(2000))
    monkeypatch.setattr(data_module, "MAX_DATA_BYTES", 1 << 20)
    inflated = []
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: inflated.append(1))
    message = short(quick(lambda: load(data_spec(tmp_path, "bomb.npz"))))
    assert "X.npy in bomb.npz inflates to 15.3 MiB" in message and "1 MiB" in message, message
    assert not inflated


def test_data_are_read_once(tmp_path, monkeypatch):
    np.savez_compressed(tmp_path / "data.npz", X=np.ones((5, 3)), y=np.arange(5))
    reads = []
    original = np.lib.format.read_array
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: reads.append(1) or original(*a, **k))
    spec = load(data_spec(tmp_path, "data.npz"))
    X, y = load_data(spec)
    X2, _ = load_data(spec)
    assert spec.sizes["P"] == 5 and spec.sizes["D"] == 3 and X.shape == (5, 3)
    assert X2 is X and not X.flags.writeable and y.dtype == np.float64
    assert len(reads) == 2  # X and y, once each


def test_data_file_changed_after_validation(tmp_path):
    np.savez(tmp_path / "data.npz", X=np.ones((5, 3)), y=np.zeros(5))
    spec = load(data_spec(tmp_path, "data.npz"))
    np.savez(tmp_path / "data.npz", X=np.ones((5, 3)), y=np.full(5, np.nan))
    os.utime(tmp_path / "data.npz", ns=(1, 1))
    with pytest.raises(SpecError) as info:
        load_data(spec)
    assert "non-finite" in short(info.value)
    assert isinstance(spec.data, DataFile)


# --------------------------------------------------------- 4. spec paths
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_spec_path_that_is_a_fifo(tmp_path):
    os.mkfifo(tmp_path / "spec.yaml")
    message = short(quick(lambda: load(tmp_path / "spec.yaml")))
    assert "spec.yaml:1:1: cannot read the spec: it is not a regular file (a FIFO)" in message, message


def test_spec_path_that_is_a_directory(tmp_path):
    message = short(quick(lambda: load(tmp_path)))
    assert "cannot read the spec: it is a directory" in message, message


def test_spec_path_symlink_to_dev_zero(tmp_path):
    if not Path("/dev/zero").exists():
        pytest.skip("needs /dev/zero")
    (tmp_path / "spec.yaml").symlink_to("/dev/zero")
    message = short(quick(lambda: load(tmp_path / "spec.yaml")))
    assert "not a regular file (a character device)" in message, message


def test_spec_file_over_the_size_cap(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(BASE + "#" * (1 << 20) + "\n")
    message = short(quick(lambda: load(path)))
    assert "more than the limit of 1 MiB" in message, message


def test_spec_path_missing(tmp_path):
    message = short(quick(lambda: load(tmp_path / "nope.yaml")))
    assert "cannot read the spec: it does not exist" in message, message


# -------------------------------------------------------------- 5. smaller edges
@pytest.mark.parametrize(
    "char, name", [("\x00", "NUL"), ("\x07", "U+0007"), ("\x1b", "U+001B")], ids=["nul", "bel", "esc"]
)
def test_control_character_is_located(char, name):
    text = BASE.replace("name: base_net", f"name: base{char}net")
    message = bad(text)
    assert "<string>:2:11: " in message and name in message, message


def test_control_character_in_an_override_is_located():
    message = short(quick(lambda: loads(BASE, overrides=["name=a\x00b"])))
    assert "<--set name=a\\x00b>:1:7: " in message, message


@pytest.mark.parametrize(
    "old, new, char, col",
    [
        ("lr: eta", "lr: ｅｔａ", "'ｅ' (U+FF45 FULLWIDTH LATIN SMALL LETTER E)", 16),
        ("times: L - 1", "times: ℕ - 63", "'ℕ' (U+2115 DOUBLE-STRUCK CAPITAL N)", 14),
        ("{out: N, name", "{out: 2*ℕ, name", "U+2115", 20),
        ("lr: eta", "lr: 'eta\u00a0* 2'", "U+00A0", 20),
    ],
    ids=["fullwidth", "double_struck", "inside", "nbsp"],
)
def test_look_alike_unicode_in_expressions(old, new, char, col):
    text = BASE.replace(old, new, 1)
    message = bad(text)
    line = text[: text.index(new)].count("\n") + 1
    assert f"<string>:{line}:{col}: " in message and char in message and "non-ASCII" in message, message


@pytest.mark.parametrize(
    "old, new, read, fix",
    [
        ("N: 64", "N: 17:04", "base-60 number 1024", "write 1024"),
        ("N: 64", "N: 0b1000000", "binary number 64", "write 64"),
        ("N: 64", "N: 0x40", "hexadecimal number 64", "write 64"),
        ("N: 64", "N: 0100", "octal number 64", "write 64"),
        ("N: 64", "N: 1_024", "1024 (underscores dropped)", "write 1024"),
        ("eta: 0.5", "eta: 1:30.5", "base-60 number 90.5", "write 90.5"),
        ("eta: 0.5", "eta: 1_000.5", "1000.5 (underscores dropped)", "write 1000.5"),
    ],
    ids=["sexagesimal", "binary", "hex", "octal", "underscore", "sexagesimal_float", "underscore_float"],
)
def test_yaml_11_number_forms_are_refused(old, new, read, fix):
    message = bad(BASE.replace(old, new, 1))
    assert "YAML 1.1" in message and read in message and fix in message, message


def test_yaml_11_number_form_in_an_override():
    message = short(quick(lambda: loads(BASE, overrides=["sizes.N=0x40"])))
    assert "<--set sizes.N=0x40>:1:9: sizes.N: " in message and "hexadecimal number 64" in message, message


@pytest.mark.parametrize(
    "old, new, check",
    [
        ("N: 64", "N: 1000", lambda s: s.sizes["N"] == 1000),
        ("N: 64", "N: +64", lambda s: s.sizes["N"] == 64),
        ("eta: 0.5", "eta: 1e-3", lambda s: s.hyper["eta"] == 1e-3),
        ("eta: 0.5", "eta: 2E+2", lambda s: s.hyper["eta"] == 200.0),
        ("eta: 0.5", "eta: 1.0e-4", lambda s: s.hyper["eta"] == 1e-4),
        ("eta: 0.5", "eta: .5", lambda s: s.hyper["eta"] == 0.5),
        ("lr: eta", "lr: 1e-3", lambda s: str(s.training.lr) == "1/1000"),
        ("lr: eta", "lr: -3 + 8*eta", lambda s: str(s.training.lr) == "8*eta - 3"),
        ("limit: {N: inf}", "limit: {N: .inf}", lambda s: s.limit == ("N",)),
    ],
    ids=["int", "plus", "e-3", "E+2", "1.0e-4", ".5", "lr_e-3", "expr", ".inf"],
)
def test_plain_numbers_still_load(old, new, check):
    assert check(loads(BASE.replace(old, new, 1)))


@pytest.mark.parametrize(
    "old, new, what",
    [
        ("sizes: {N: 64, L: 2}", "sizes: {N: 64, L: 2, [1, 2]: 3}", "a list"),
        ("sizes: {N: 64, L: 2}", "sizes:\n  N: 64\n  L: 2\n  ? [a, b]\n  : 1", "a list"),
        ("sizes: {N: 64, L: 2}", "sizes:\n  N: 64\n  L: 2\n  ? {a: b}\n  : 1", "a mapping"),
    ],
    ids=["flow", "block_list", "block_map"],
)
def test_complex_mapping_key(old, new, what):
    message = bad(BASE.replace(old, new, 1))
    assert f"sizes: this key is {what}; keys must be plain names" in message, message
    assert "Node" not in message, message


# ------------------------------------------------------------ 6. short messages
@pytest.mark.parametrize("lr, why", [("eta*N**(N*N)", "its value is beyond the float range"),
                                     ("eta/(L - 2)", "it divides by zero")])
def test_an_expression_that_cannot_be_evaluated_says_why_in_words(lr, why):
    message = bad(BASE.replace("lr: eta", f"lr: {lr}"))
    assert f"cannot evaluate at the sizes given: {why}" in message and "(34," not in message, message


LONG = "a-" * 3000


@pytest.mark.parametrize(
    "old, new",
    [
        ("name: base_net", "name: " + LONG),
        ("sizes: {N: 64", "sizes: {N: 64, " + "K" * 900),
        ("sizes: {N: 64, L: 2}", "sizes:\n  N: 64\n  L: 2\n  ? " + "K" * 5000 + "\n  : 3"),
        ("lr: eta", "lr: " + "eta+" * 300 + "eta"),
        ("lr: eta", "lr: !<" + "x" * 3000 + "> eta"),
        ("lr: eta", "lr: \"" + "(" * 200 + "eta" + ")" * 200 + " ^ 2\""),
        ("preset: mup", "preset: " + LONG),
        (SYNTH, "file: " + "d" * 3000 + ".npz"),
        ("eta: 0.5", "eta: !!float " + LONG),
        ("N: 64", "N: " + "1:" * 50000 + "1"),
        ("N: 64", "N: " + "1_" * 50000 + "1"),
    ],
    ids=["name", "flow_key", "long_key", "long_expr", "long_tag", "long_xor", "preset", "file", "float_tag",
         "sexagesimal", "underscores"],
)
def test_messages_stay_short(old, new):
    bad(BASE.replace(old, new, 1))


def test_many_problems_are_cut_short():
    keys = "".join(f"  k{i}: 1\n" for i in range(500))
    text = BASE.replace("training: {lr: eta, steps: 5}\n", f"training:\n  lr: eta\n  steps: 5\n{keys}")
    err = quick(lambda: loads(text))
    assert isinstance(err, SpecError)
    message = err.render()
    assert len(err.problems) == 21 and "480 more problems not shown" in message, message
    assert len(message) < 8000, message
