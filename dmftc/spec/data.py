"""The `data` section and the data themselves.

Exactly one of ``file: path.npz`` (relative to the spec's folder; arrays X of
shape (P, D) or (P, S, D) and y of shape (P,)), ``synthetic: {P, D, S?,
target, seed}`` or ``dataset: {name, classes, P, test?, seed?, preprocess?}`` (a small
real set shipped inside a package, read without a download: `dataset_data`). The data
fix the sizes P, D and, for token sequences, S.

A data file is never trusted: it must be a regular file (a FIFO or a device is
refused unopened), the shapes and dtypes come from the array headers, and X and
y are read only when they fit `MAX_DATA_BYTES` as float64; they are read once
and kept (read-only) for `load_data` while the file is unchanged.
"""

from __future__ import annotations

import math
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import Problem, SpecError
from ..notation import size_symbol
from . import checks as c
from .limits import MAX_DATA_BYTES, FileRefused, open_regular, shorten, size
from .schema import DATA_KEYS, DATASET_KEYS, DATASET_REQUIRED, SYNTHETIC_KEYS, SYNTHETIC_REQUIRED
from .types import DATASETS, PREPROCESS, TARGETS, TOKEN_TARGETS, Data, DataFile, Dataset, Spec, Synthetic
from .yamlpos import MapNode, Node, Scalar


def read_data(ctx: c.Ctx, node: Node | None, base_dir: Path) -> Data | None:
    """The data section; on success the data sizes get their values in `ctx`."""
    fields = c.mapping(ctx, node, "data", DATA_KEYS)
    if fields is None:
        return None
    if len(fields) != 1:
        given = ", ".join(fields) or "none"
        ctx.add(node, "data", "give exactly one of file, synthetic and dataset", received=given,
                allowed=", ".join(DATA_KEYS), hint="e.g. `data: {synthetic: {P: 8, D: 16, seed: 0}}`")
        return None
    if "file" in fields:
        data = _file(ctx, fields["file"], base_dir)
    elif "synthetic" in fields:
        data = _synthetic(ctx, fields["synthetic"])
    else:
        data = _dataset(ctx, fields["dataset"])
    if data is not None:
        for name, value in data_sizes(data).items():
            ctx.values[size_symbol(name)] = float(value)
    return data


def data_sizes(data: Data) -> dict[str, int]:
    """P, D and (for token sequences) S of valid data."""
    if isinstance(data, Synthetic):
        shape = (data.P, data.D) if data.S is None else (data.P, data.S, data.D)
    elif isinstance(data, Dataset):
        shape = (data.P, DATASETS[data.name])
    else:
        shape = data_arrays(data)[0].shape
    sizes = {"P": shape[0], "D": shape[-1]}
    return sizes | ({"S": shape[1]} if len(shape) == 3 else {})


# ------------------------------------------------------------------------- file
def _file(ctx: c.Ctx, node: Node, base_dir: Path) -> DataFile | None:
    name = c.text(ctx, node, "data.file")
    if name is None:
        return None
    path = base_dir / name
    try:
        read_arrays(path)
    except FileRefused as why:
        shown = repr(shorten(name))
        if why.missing:
            _not_found(ctx, node, name, path, base_dir)
        else:
            ctx.add(node, "data.file", f"data file {shown} {why.reason}", received=shown, allowed=_NPZ,
                    hint="name an .npz file; the path is relative to the spec's folder")
        return None
    except BadData as bad:
        ctx.add(node, "data.file", str(bad), received=repr(shorten(name)), allowed=_NPZ, hint=bad.hint)
        return None
    held_out = read_test_arrays(path)
    return DataFile(path=path, pos=node.loc, test=0 if held_out is None else len(held_out[1]))


_NPZ = "an .npz with X of shape (P, D) or (P, S, D) and y of shape (P,)"


def _not_found(ctx: c.Ctx, node: Node, name: str, path: Path, base_dir: Path) -> None:
    found = sorted(p.name for p in base_dir.glob("*.npz") if p.is_file()) if base_dir.is_dir() else []
    message = f"data file not found: {shorten(str(path), 120)}"
    ctx.add(node, "data.file", message, received=repr(shorten(name)),
            allowed=shorten(", ".join(found), 200) or "(no .npz next to the spec)",
            hint=c.close_hint(name, found, "the path is relative to the spec's folder"))


# ------------------------------------------------------------------ the arrays
class BadData(Exception):
    """What is wrong with the arrays of a data file, as one sentence naming the file, and the fix."""

    def __init__(self, message: str, hint: str = "save it with numpy.savez(path, X=X, y=y)"):
        super().__init__(message)
        self.hint = hint


#: what reading a broken or hostile zip or .npy can raise
_READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ValueError, EOFError, RuntimeError, NotImplementedError, OverflowError, MemoryError,
    zipfile.BadZipFile, zlib.error, struct.error,
)
try:
    from lzma import LZMAError

    _READ_ERRORS += (LZMAError,)
except ImportError:  # a Python without lzma cannot inflate such members either
    pass

_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # the last file read: (path, inode, size, mtime)
_TEST: dict[str, tuple[np.ndarray, np.ndarray]] = {}     # its held-out arrays X_test, y_test, if any


def data_arrays(data: DataFile) -> tuple[np.ndarray, np.ndarray]:
    """X and y of a data file (see `read_arrays`), a problem with it raised as a `SpecError`."""
    try:
        return read_arrays(data.path)
    except (FileRefused, BadData) as exc:
        what = f"data file {shorten(data.path.name)!r} {exc.reason}" if isinstance(exc, FileRefused) else str(exc)
        problem = Problem(what, data.pos, "data.file", allowed=_NPZ, hint="check the data file")
        raise SpecError([problem]) from None


def read_test_arrays(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The held-out arrays X_test and y_test of the .npz at `path` (None when it has none), checked as
    `read_arrays` checks X and y, with X_test's trailing shape equal to X's."""
    read_arrays(path)
    return _TEST.get(str(path))


def read_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """X and y of the .npz at `path`: checked, float64, read-only; read once while the file is unchanged.

    Raises
    ------
    FileRefused
        The path is not a regular file of at most `MAX_DATA_BYTES` (says what it is).
    BadData
        The file is not an .npz with valid arrays X and y that fit `MAX_DATA_BYTES` as float64.
    """
    with open_regular(path, MAX_DATA_BYTES) as file:
        st = os.fstat(file.fileno())
        key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if key in _CACHE:
            return _CACHE[key]
        arrays, held_out = _read_npz(file, path.name)
    _CACHE.clear()
    _TEST.clear()
    _CACHE[key] = arrays
    if held_out is not None:
        _TEST[str(path)] = held_out
    return arrays


def _read_npz(file: BinaryIO, name: str):
    """((X, y), (X_test, y_test) or None) of an open .npz, every header checked before anything is read."""
    name = shorten(name)
    if file.read(6) == b"\x93NUMPY":
        raise BadData(f"{name} is an .npy file (one array); expected an .npz with arrays X and y")
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:
            members = _members(archive, name)
            headers = {k: _header(archive, info, name) for k, info in members.items()}
            _check_headers(headers, name)
            arrays = {k: _float64(archive, info) for k, info in members.items()}
    except _READ_ERRORS as exc:
        raise BadData(f"cannot read {name} as .npz: {shorten(str(exc) or type(exc).__name__, 120)}") from None
    for label, array in arrays.items():
        if not np.isfinite(array).all():
            raise BadData(f"{label} has non-finite entries (nan or inf)")
    held_out = (arrays["X_test"], arrays["y_test"]) if "X_test" in arrays else None
    return (arrays["X"], arrays["y"]), held_out


def _members(archive: zipfile.ZipFile, name: str) -> dict[str, zipfile.ZipInfo]:
    """The members X.npy and y.npy, their inflated and compressed sizes within the cap."""
    infos = {info.filename: info for info in archive.infolist()}
    missing = [k for k in ("X", "y") if f"{k}.npy" not in infos]
    if missing:
        have = ", ".join(n.removesuffix(".npy") for n in infos) or "none"
        raise BadData(f"{name} has no array {' or '.join(missing)} (it has {shorten(have, 80)})")
    held_out = [k for k in ("X_test", "y_test") if f"{k}.npy" in infos]
    if len(held_out) == 1:
        other = ({"X_test", "y_test"} - set(held_out)).pop()
        raise BadData(f"{name} has {held_out[0]} but no {other}: held-out points need both",
                      "save them with numpy.savez(path, X=X, y=y, X_test=X_test, y_test=y_test)")
    members = {k: infos[f"{k}.npy"] for k in ("X", "y", *held_out)}
    for key, info in members.items():
        for what, n in (("inflates to", info.file_size), ("takes", info.compress_size)):
            if n > MAX_DATA_BYTES:
                limit = size(MAX_DATA_BYTES)
                raise BadData(f"{key}.npy in {name} {what} {size(n)}, more than the limit of {limit}", _SMALLER)
    return members


_Header = tuple[tuple[int, ...], np.dtype, int]  # shape, dtype, data bytes present


def _header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> _Header:
    """Shape, dtype and data bytes available of one .npy member, from its header only."""
    with archive.open(info) as fp:
        version = np.lib.format.read_magic(fp)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise BadData(f"{info.filename} in {name} is .npy format {version}; save it with numpy.savez")
        shape, _, dtype = readers[version](fp)
        return tuple(shape), dtype, info.file_size - fp.tell()


def _check_headers(headers: dict[str, _Header], name: str) -> None:
    """Shapes, dtypes and sizes of X and y, before anything is read."""
    (X, x_type, _), (y, y_type, _) = headers["X"], headers["y"]
    if len(X) not in (2, 3):
        raise BadData(f"X has shape {X}; expected (P, D) or (P, S, D)")
    if y != (X[0],):
        raise BadData(f"y has shape {y}; expected (P,) = ({X[0]},) to match X of shape {X}")
    if min(X) < 1:
        raise BadData(f"X has shape {X}; every size must be at least 1")
    for label, dtype in (("X", x_type), ("y", y_type)):
        if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
            raise BadData(f"{label} has dtype {shorten(str(dtype))}; expected real numbers")
    if "X_test" in headers:
        (Xt, xt_type, _), (yt, yt_type, _) = headers["X_test"], headers["y_test"]
        if Xt[1:] != X[1:] or len(Xt) != len(X):
            raise BadData(f"X_test has shape {Xt}; expected (Q, {', '.join(map(str, X[1:]))}) like X of shape {X}")
        if yt != (Xt[0],):
            raise BadData(f"y_test has shape {yt}; expected ({Xt[0]},) to match X_test of shape {Xt}")
        for label, dtype in (("X_test", xt_type), ("y_test", yt_type)):
            if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
                raise BadData(f"{label} has dtype {shorten(str(dtype))}; expected real numbers")
    need = 8 * sum(math.prod(shape) for shape, _, _ in headers.values())
    if need > MAX_DATA_BYTES:
        raise BadData(f"X in {name} has shape {X}: X and y take {size(need)} as float64, "
                      f"more than the limit of {size(MAX_DATA_BYTES)}", _SMALLER)
    for label, (shape, dtype, available) in headers.items():
        claimed = math.prod(shape) * dtype.itemsize
        if claimed > available:
            raise BadData(f"{label} in {name} claims shape {shape} ({size(claimed)}) "
                          f"but holds only {size(max(available, 0))}")


_SMALLER = "use fewer samples or features: the data are held in memory as float64"


def _float64(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One member read (once) as a read-only float64 array."""
    with archive.open(info) as fp:
        array = np.asarray(np.lib.format.read_array(fp, allow_pickle=False), np.float64)
    array.flags.writeable = False
    return array


# -------------------------------------------------------------------- synthetic
def _synthetic(ctx: c.Ctx, node: Node) -> Synthetic | None:
    fields = c.mapping(ctx, node, "data.synthetic", SYNTHETIC_KEYS, SYNTHETIC_REQUIRED)
    if fields is None:
        return None
    path = "data.synthetic"
    before = len(ctx.problems)
    P = c.integer(ctx, fields.get("P"), c.join(path, "P")) if "P" in fields else None
    D = c.integer(ctx, fields.get("D"), c.join(path, "D")) if "D" in fields else None
    S = _optional_size(ctx, fields.get("S"), c.join(path, "S"))
    target = "tanh_linear"
    if "target" in fields:
        target = c.choice(ctx, fields["target"], c.join(path, "target"), TARGETS, "target")
    seed = c.seed(ctx, fields["seed"], c.join(path, "seed")) if "seed" in fields else 0
    test = c.integer(ctx, fields["test"], c.join(path, "test"), minimum=0) if "test" in fields else 0
    if len(ctx.problems) > before or None in (P, D, target, seed, test):
        return None
    if target in TOKEN_TARGETS and (S is None or S < 2):
        _needs_tokens(ctx, fields["target"], c.join(path, "target"), target, S)
    # returned even then, so that P, D (and S) keep their values and nothing else is reported twice
    return Synthetic(P=P, D=D, S=S, target=target, seed=seed, test=test, pos=node.loc)


def _needs_tokens(ctx: c.Ctx, node: Node, path: str, target: str, S: int | None) -> None:
    flat = [t for t in TARGETS if t not in TOKEN_TARGETS]
    if S is None:
        ctx.add(node, path, f"target {target} needs token data, but data.synthetic has no S",
                received=f"{target} with X of shape (P, D)",
                allowed=f"{target} with S >= 2 (X of shape (P, S, D)); without S: {', '.join(flat)}",
                hint="add `S: 4` to data.synthetic (and a `- pool: mean` before the readout), "
                     "or use target: tanh_linear for flat data")
    else:
        ctx.add(node, path, f"target {target} needs at least 2 tokens to attend between",
                received=f"{target} with S = {S}", allowed="S >= 2",
                hint="set data.synthetic.S to 2 or more, or use target: tanh_linear")


def _optional_size(ctx: c.Ctx, node: Node | None, path: str) -> int | None:
    if node is None or (isinstance(node, Scalar) and node.tag == "null"):
        return None
    return c.integer(ctx, node, path)


# ---------------------------------------------------------------------- dataset
#: classes of each data set in `DATASETS`: labels 0 .. n - 1
DATASET_CLASSES = {"digits": 10}
#: the fix of a missing required key of data.dataset
_MISSING_HINTS = {"name": "name: digits", "classes": "classes: [3, 8]", "P": "P: 64"}
_EXTRA = "pip install 'dmftc[data]' (the data extra), or pip install scikit-learn"


def _dataset(ctx: c.Ctx, node: Node) -> Dataset | None:
    path = "data.dataset"
    fields = c.mapping(ctx, node, path, DATASET_KEYS)
    if fields is None:
        return None
    before = len(ctx.problems)
    for key in DATASET_REQUIRED:
        if key not in fields:
            ctx.add(node, c.join(path, key), f"missing key {key!r}", hint=f"add `{_MISSING_HINTS[key]}`")
    name = c.choice(ctx, fields["name"], c.join(path, "name"), tuple(DATASETS), "dataset") if "name" in fields else None
    classes = _classes(ctx, fields["classes"], c.join(path, "classes"), name) if "classes" in fields else None
    P = c.integer(ctx, fields["P"], c.join(path, "P")) if "P" in fields else None
    test = c.integer(ctx, fields["test"], c.join(path, "test"), minimum=0) if "test" in fields else 0
    seed = c.seed(ctx, fields["seed"], c.join(path, "seed")) if "seed" in fields else 0
    preprocess = "standardize"
    if "preprocess" in fields:
        preprocess = c.choice(ctx, fields["preprocess"], c.join(path, "preprocess"), PREPROCESS, "preprocess")
    if len(ctx.problems) > before or None in (name, classes, P, test, seed, preprocess):
        return None
    data = Dataset(name=name, classes=classes, P=P, test=test, seed=seed, preprocess=preprocess, pos=node.loc)
    try:
        _, labels = _read_dataset(name)
    except MissingPackage as why:
        ctx.add(fields["name"], c.join(path, "name"), str(why), received=repr(name), hint=why.hint)
        return data  # P and D keep their values: nothing else is reported because of it
    available = int(np.isin(labels, classes).sum())
    if P + test > available:
        a, b = classes
        ctx.add(fields["P"], c.join(path, "P"),
                f"P + test = {P} + {test} = {P + test} is more than the {available} images of classes "
                f"{a} and {b} in {name}", received=f"P = {P}, test = {test}", allowed=f"P + test <= {available}",
                hint=f"lower P or test so that they add up to {available} at most")
    return data  # returned even then, so that P and D keep their values


def _classes(ctx: c.Ctx, node: Node, path: str, name: str | None) -> tuple[int, int] | None:
    """Two distinct class labels of the data set (its range checked when `name` is known)."""
    items = c.sequence(ctx, node, path, "class labels")
    if items is None:
        return None
    labels = [c.integer(ctx, item, c.join(path, i), minimum=0) for i, item in enumerate(items)]
    count = DATASET_CLASSES.get(name) if name is not None else None
    ok = None not in labels
    for i, (item, label) in enumerate(zip(items, labels)):
        if label is not None and count is not None and label >= count:
            ctx.add(item, c.join(path, i), f"class {label} is out of range: {name} has the classes 0..{count - 1}",
                    received=str(label), allowed=f"0..{count - 1}", hint=f"give two labels from 0 to {count - 1}")
            ok = False
    shown = "[" + ", ".join("?" if label is None else str(label) for label in labels) + "]"
    if len(items) > 2:
        ctx.add(node, path, f"{len(items)} classes need {len(items)} outputs (a readout of C vectors), "
                "which the engine does not have yet", received=shorten(shown, 40),
                allowed="two classes (targets +1 and -1 for one scalar output)",
                hint="give two classes, e.g. [3, 8]")
        return None
    if len(items) < 2:
        ctx.add(node, path, f"{len(items)} class{'es' if not items else ''}: a classification needs two classes "
                "to tell apart", received=shown, allowed="two distinct class labels",
                hint="give two classes, e.g. [3, 8]")
        return None
    if ok and labels[0] == labels[1]:
        ctx.add(node, path, f"the two classes are the same ({labels[0]})", received=shown,
                allowed="two distinct class labels", hint="give two different classes, e.g. [3, 8]")
        return None
    return (labels[0], labels[1]) if ok else None


class MissingPackage(Exception):
    """The package a data set is read from is not installed (or cannot be read); `hint` says what to install."""

    def __init__(self, message: str, hint: str = _EXTRA):
        super().__init__(message)
        self.hint = hint


_DATASETS: dict[str, tuple[np.ndarray, np.ndarray]] = {}   # name -> (X, labels), read once, read-only


def _read_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """All the images of data set `name` as float64 (n, D), and their integer labels (n,); read once.

    scikit-learn is imported here, and only here (it takes a second or two): a spec without a
    dataset never needs it.
    """
    if name not in _DATASETS:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise MissingPackage(f"the {name} data set comes with scikit-learn, which is not installed") from None
        try:
            X, labels = load_digits(return_X_y=True)
        except (OSError, ValueError) as exc:
            raise MissingPackage(f"cannot read the {name} data set from scikit-learn: {shorten(str(exc), 120)}",
                                 "reinstall scikit-learn: pip install --force-reinstall scikit-learn") from None
        X, labels = np.asarray(X, np.float64), np.asarray(labels, np.int64)
        X.flags.writeable = labels.flags.writeable = False
        _DATASETS[name] = (X, labels)
    return _DATASETS[name]


def dataset_data(data: Dataset, test: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The training arrays (X of shape (P, D), y of shape (P,)) of a `Dataset`; with `test`, its `data.test`
    held-out points instead.

    The images of the two classes, in the data set's order, are shuffled by one
    ``numpy.random.default_rng(seed).permutation``: the first P are the training points, the next
    `test` the held-out ones (no image is in both). y = +1 for an image of ``classes[0]``, -1 for
    ``classes[1]``. `preprocess`:

    - ``standardize`` (default): x_i <- (x_i - m_i) / s_i with m_i and s_i the mean and the standard
      deviation (ddof 0) of feature i over the P training points; a feature constant over them
      (s_i = 0, e.g. a corner pixel that is always blank) is set to 0 on every point. The held-out
      points get the same transform (the training points' m and s).
    - ``unit``: x <- x / 16 (digits' pixels are integers 0..16), so every feature lies in [0, 1].
    - ``none``: the pixels as they are, 0..16.

    Raises
    ------
    SpecError
        scikit-learn is not installed, or P + test exceeds the images of the two classes.
    """
    try:
        X_all, labels = _read_dataset(data.name)
    except MissingPackage as why:
        raise SpecError([Problem(str(why), data.pos, "data.dataset.name", hint=why.hint)]) from None
    a, b = data.classes
    where = np.flatnonzero((labels == a) | (labels == b))
    if data.P + data.test > where.size:
        message = f"P + test = {data.P + data.test} is more than the {where.size} images of classes {a} and {b}"
        raise SpecError([Problem(message, data.pos, "data.dataset.P", allowed=f"P + test <= {where.size}",
                                 hint="lower P or test")])
    order = where[np.random.default_rng(data.seed).permutation(where.size)]
    train = order[:data.P]
    picked = order[data.P:data.P + data.test] if test else train
    X = X_all[picked]
    if data.preprocess == "standardize":
        mean, std = X_all[train].mean(axis=0), X_all[train].std(axis=0)
        scale = np.divide(1.0, std, out=np.zeros_like(std), where=std > 0)
        X = (X - mean) * scale
    elif data.preprocess == "unit":
        X = X / 16.0
    return np.array(X, np.float64), np.where(labels[picked] == a, 1.0, -1.0)


def check_declared_sizes(ctx: c.Ctx, sizes: dict[str, int], data: Data, node: Node | None) -> None:
    """P, D or S written under `sizes` must agree with the data."""
    given = data_sizes(data)
    for name in ("P", "D", "S"):
        if name not in sizes or given.get(name) == sizes[name]:
            continue
        where = node.get(name) if isinstance(node, MapNode) else node
        have = f"the data give {name} = {given[name]}" if name in given else "the data have no tokens"
        ctx.add(where, c.join("sizes", name), f"sizes.{name} disagrees with the data: {have}",
                received=str(sizes[name]), allowed=str(given.get(name, "(none)")),
                hint=f"remove sizes.{name} (the data set it) or change the data")


# ------------------------------------------------------------------ the arrays
def load_data_of(data: Data) -> tuple[np.ndarray, np.ndarray]:
    """The training arrays of a data section (see `load_data`)."""
    if isinstance(data, DataFile):
        return data_arrays(data)
    if isinstance(data, Dataset):
        return dataset_data(data)
    return synthetic_data(data)


def load_data(spec: Spec) -> tuple[np.ndarray, np.ndarray]:
    """The training data (X, y) of a spec, as float64 arrays, deterministically.

    A `Dataset` (``data.dataset``) gives the arrays of `dataset_data`.

    A data file is read with ``allow_pickle=False``, once: its arrays are kept,
    read-only, while the file is unchanged (`read_arrays`); a file that became
    invalid since the spec was loaded raises a `SpecError`. Synthetic data are drawn from
    ``rng = numpy.random.default_rng(seed)`` in this order:

    1. X ~ N(0, 1) of shape (P, D), or (P, S, D) for token sequences;
    2. beta ~ N(0, I_D), shape (D,);
    3. for ``target: random`` only, y ~ N(0, 1) of shape (P,);
       for ``target: teacher_attention`` only, C ~ N(0, 1) of shape (D, D).

    With z = X_bar . beta / sqrt(D), where X_bar = X for (P, D) inputs and the token
    mean X.mean(axis=1) for sequences, the targets are ``linear``: y = z;
    ``tanh_linear``: y = tanh(z); ``sign_linear``: y = sign(z) (0 where z = 0);
    ``random``: the draw of step 3.

    ``teacher_attention`` (token sequences with S >= 2 only) is a fixed single-head
    attention teacher whose query is the first token of each sequence::

        l_{mu s} = 2 * x_{mu 0} . (C x_{mu s}) / D           (logits, s = 0..S-1)
        a_{mu s} = exp(l_{mu s}) / sum_s' exp(l_{mu s'})     (softmax over the tokens)
        y_mu     = tanh( sum_s a_{mu s} * (beta . x_{mu s}) / sqrt(D) )

    The logits have standard deviation about 2 (temperature 1/2 on x0.C xs / D, which
    is O(1)), so the weights are far from uniform. y is not rescaled (like
    ``tanh_linear`` it lies in (-1, 1)). Since the first token is the query, moving
    another token to the front changes y while the token mean stays the same.

    Returns
    -------
    X : numpy.ndarray
        Shape (P, D) or (P, S, D), float64.
    y : numpy.ndarray
        Shape (P,), float64.
    """
    return load_data_of(spec.data)


def synthetic_data(data: Synthetic, test: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The arrays of a `Synthetic` data description (see `load_data`); with `test`, its `data.test`
    held-out points instead, drawn after everything the training points use, from the same input
    distribution and the same target function (`random` targets: fresh N(0, 1) draws)."""
    rng = np.random.default_rng(data.seed)
    shape = (data.P, data.D) if data.S is None else (data.P, data.S, data.D)
    X = rng.standard_normal(shape)
    beta = rng.standard_normal(data.D)
    y_random = rng.standard_normal(data.P) if data.target == "random" else None
    C = rng.standard_normal((data.D, data.D)) if data.target == "teacher_attention" else None
    if test:
        X = rng.standard_normal((data.test, *shape[1:]))
        y_random = rng.standard_normal(data.test) if data.target == "random" else None
    X_bar = X if data.S is None else X.mean(axis=1)
    z = X_bar @ beta / np.sqrt(data.D)
    targets = {
        "linear": lambda: z,
        "tanh_linear": lambda: np.tanh(z),
        "sign_linear": lambda: np.sign(z),
        "random": lambda: y_random,
        "teacher_attention": lambda: teacher_attention(X, beta, C),
    }
    return X.astype(np.float64), np.asarray(targets[data.target](), np.float64)


def load_test(spec: Spec) -> tuple[np.ndarray, np.ndarray] | None:
    """The held-out points (X_test, y_test) of a spec (`data.synthetic.test`, `data.dataset.test`, or a data
    file's arrays X_test and y_test), None
    when it has none. They never drive an update: the DMFT and the simulator predict their outputs and loss."""
    if isinstance(spec.data, Synthetic) and spec.data.test:
        return synthetic_data(spec.data, test=True)
    if isinstance(spec.data, Dataset) and spec.data.test:
        return dataset_data(spec.data, test=True)
    if isinstance(spec.data, DataFile) and spec.data.test:
        return read_test_arrays(spec.data.path)
    return None


def teacher_attention(X: np.ndarray, beta: np.ndarray, C: np.ndarray) -> np.ndarray:
    """y_mu = tanh(sum_s a_{mu s} beta . x_{mu s} / sqrt(D)), a = softmax_s(2 x_{mu 0} . C x_{mu s} / D).

    X has shape (P, S, D), beta (D,), C (D, D); the result has shape (P,). See `load_data`.
    """
    if X.ndim != 3:
        raise ValueError(f"teacher_attention needs token sequences X of shape (P, S, D), got {X.shape}")
    D = X.shape[-1]
    logits = 2.0 * np.einsum("pi,ij,psj->ps", X[:, 0, :], C, X) / D
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    values = X @ beta / np.sqrt(D)                                   # (P, S)
    return np.tanh(np.sum(weights * values, axis=1))
