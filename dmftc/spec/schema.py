"""The spec format as data: the keys of every section, and the JSON Schema built from them.

The validator, the `--set` overrides and `json_schema()` all read these tables,
so the three cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from .types import ACTIVATIONS, DATASETS, DECAYS, LOSSES, OPTIMIZERS, PREPROCESS, PRESETS, TARGETS, TOKEN_TARGETS

VERSION = 1

#: top-level keys in canonical order, and the required ones.
TOP_KEYS = (
    "dmftc", "name", "description", "sizes", "hyper", "model",
    "parameterization", "limit", "training", "data", "solver",
)  # fmt: skip
TOP_REQUIRED = ("dmftc", "name", "model", "parameterization", "limit", "training", "data")

#: op kind -> keys of its body (None: the body is a scalar, not a mapping).
OP_KEYS: dict[str, tuple[str, ...] | None] = {
    "dense": ("out", "name"),
    "act": None,
    "repeat": ("times", "body", "index"),
    "residual": ("scale", "branch"),
    "layernorm": (),
    "attention": ("heads", "key_dim", "logit_scale", "name"),
    "pool": None,
    "readout": ("name",),
}
OP_REQUIRED = {
    "dense": ("out",),
    "repeat": ("times", "body"),
    "residual": ("scale", "branch"),
    "attention": ("heads", "key_dim", "logit_scale"),
}
POOL_MODES = ("mean",)

PARAM_KEYS = ("preset", "weights")
WEIGHT_KEYS = ("multiplier", "init_std", "lr")
TRAINING_KEYS = ("loss", "optimizer", "lr", "steps", "schedule", "momentum", "nesterov", "weight_decay", "decay",
                 "batches", "betas", "eps", "center_output")
BATCH_KEYS = ("size", "seed", "online")
TRAINING_REQUIRED = ("lr", "steps")
DATA_KEYS = ("file", "synthetic", "dataset")
SYNTHETIC_KEYS = ("P", "D", "S", "target", "seed", "test")
SYNTHETIC_REQUIRED = ("P", "D")
DATASET_KEYS = ("name", "classes", "P", "test", "seed", "preprocess")
DATASET_REQUIRED = ("name", "classes", "P")
SOLVER_KEYS = ("samples", "tol", "max_iter", "damping", "seed", "dtype", "depth_steps", "batches", "rtol", "atol")
DTYPES = ("float32", "float64")
INF_WORDS = ("inf",)

#: how to write a required key that is missing (the fix of a "missing key" message).
EXAMPLES = {
    "dmftc": "dmftc: 1",
    "name": "name: my_model",
    "model": "model: [{dense: {out: N}}, {act: relu}, {readout: {}}]",
    "parameterization": "parameterization: {preset: mup}",
    "limit": "limit: {N: inf}",
    "training": "training: {lr: eta, steps: 50}",
    "data": "data: {synthetic: {P: 8, D: 16, target: tanh_linear, seed: 0}}",
    "lr": "lr: eta",
    "steps": "steps: 50",
    "out": "out: N",
    "times": "times: L",
    "body": "body: [{dense: {out: N}}, {act: relu}]",
    "scale": "scale: beta0 / L**alpha_L",
    "branch": "branch: [{act: relu}, {dense: {out: N}}]",
    "heads": "heads: H",
    "key_dim": "key_dim: N",
    "logit_scale": "logit_scale: N**(-alpha_A)",
    "P": "P: 8",
    "D": "D: 16",
}

#: mappings whose keys are names chosen by the user (sorted in the canonical form).
FREE_MAPS = (("sizes",), ("hyper",), ("parameterization", "weights"))


def known_keys(path: tuple[str | int, ...]) -> tuple[str, ...] | None:
    """The keys the format allows in the mapping at `path`, or None for a free-name mapping.

    `path` is a key path with list indices as ints, e.g. ``("model", 0, "dense")``.
    """
    shape = tuple("#" if isinstance(p, int) else p for p in path)
    fixed = {
        (): TOP_KEYS,
        ("parameterization",): PARAM_KEYS,
        ("training",): TRAINING_KEYS,
        ("data",): DATA_KEYS,
        ("data", "synthetic"): SYNTHETIC_KEYS,
        ("data", "dataset"): DATASET_KEYS,
        ("solver",): SOLVER_KEYS,
    }
    if shape in fixed:
        return fixed[shape]
    if shape[:2] == ("parameterization", "weights") and len(shape) == 3:
        return WEIGHT_KEYS
    if shape and shape[-1] == "#" and "model" in shape:
        return tuple(OP_KEYS)
    if len(shape) >= 2 and shape[-2] == "#" and OP_KEYS.get(str(shape[-1])) is not None:
        return OP_KEYS[str(shape[-1])]
    return None


# ------------------------------------------------------------------ JSON Schema
def json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of the spec format, for editors and external checks.

    It checks structure and types; what it cannot say (declared symbols, weight
    names, data shapes) is left to `dmftc.spec.load`, which checks everything.
    """
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://dmftc.invalid/schema/spec-v1.json",
        "title": "dmftc spec (format version 1)",
        "type": "object",
        "additionalProperties": False,
        "required": list(TOP_REQUIRED),
        "properties": _top_properties(),
        "$defs": _defs(),
    }


def _obj(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    out = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        out["required"] = list(required)
    return {**out, **extra}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


def _top_properties() -> dict[str, Any]:
    return {
        "dmftc": {"const": VERSION, "description": "format version"},
        "name": _ref("identifier") | {"description": "names the generated module"},
        "description": {"type": "string"},
        "sizes": {
            "type": "object",
            "description": "size symbols and their finite values",
            "propertyNames": _ref("identifier"),
            "additionalProperties": _ref("positive_int"),
        },
        "hyper": {
            "type": "object",
            "description": "positive scalar hyperparameters",
            "propertyNames": _ref("identifier"),
            "additionalProperties": {"type": "number", "exclusiveMinimum": 0},
        },
        "model": _ref("ops"),
        "parameterization": _parameterization(),
        "limit": {
            "type": "object",
            "description": "sizes that go to infinity, in order",
            "minProperties": 1,
            "propertyNames": _ref("identifier"),
            "additionalProperties": _ref("inf"),
        },
        "training": _training(),
        "data": _data(),
        "solver": _solver(),
    }


def _defs() -> dict[str, Any]:
    return {
        "identifier": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "positive_int": {"type": "integer", "minimum": 1},
        "expr": {
            "type": ["number", "string"],
            "description": "a number or a formula: declared symbols, + - * / **, (), sqrt, exp, log",
        },
        "inf": {"anyOf": [{"const": "inf"}, {"type": "number"}], "description": "inf or .inf"},
        "ops": {"type": "array", "items": _ref("op")},
        "op": {"oneOf": [_op(kind) for kind in OP_KEYS]},
    }


def _op(kind: str) -> dict[str, Any]:
    scalars = {"act": {"enum": list(ACTIVATIONS)}, "pool": {"enum": list(POOL_MODES)}}
    bodies = {
        "dense": {"out": _ref("expr"), "name": _ref("identifier")},
        "repeat": {"times": _ref("expr"), "body": _ref("ops"), "index": _ref("identifier")},
        "residual": {"scale": _ref("expr"), "branch": _ref("ops")},
        "layernorm": {},
        "attention": {
            "heads": _ref("expr"),
            "key_dim": _ref("expr"),
            "logit_scale": _ref("expr"),
            "name": _ref("identifier"),
        },
        "readout": {"name": _ref("identifier")},
    }
    if kind in scalars:
        body = scalars[kind]
    else:
        body = _obj(bodies[kind], OP_REQUIRED.get(kind, ()))
        if kind in ("layernorm", "readout"):
            body = {"anyOf": [{"type": "null"}, body]}
    return _obj({kind: body}, (kind,))


def _parameterization() -> dict[str, Any]:
    weight = _obj({k: _ref("expr") for k in WEIGHT_KEYS})
    return _obj(
        {
            "preset": {"enum": [*PRESETS, None]},
            "weights": {
                "type": "object",
                "description": "per-weight overrides, keyed by weight name",
                "propertyNames": _ref("identifier"),
                "additionalProperties": weight,
            },
        }
    )


def _training() -> dict[str, Any]:
    return _obj(
        {
            "loss": {"enum": list(LOSSES)},
            "optimizer": {"enum": list(OPTIMIZERS)},
            "lr": _ref("expr"),
            "steps": _ref("positive_int"),
            "schedule": _ref("expr"),
            "momentum": _ref("expr"),
            "nesterov": {"type": "boolean"},
            "weight_decay": _ref("expr"),
            "decay": {"enum": list(DECAYS)},
            "betas": {"type": "array", "minItems": 2, "maxItems": 2,
                      "items": {"type": "number", "minimum": 0, "exclusiveMaximum": 1}},
            "eps": {"type": "number", "exclusiveMinimum": 0},
            "center_output": {"type": "boolean"},
            "batches": {"oneOf": [
                _obj({"size": _ref("positive_int"), "seed": {"type": "integer", "minimum": 0},
                      "online": {"type": "boolean"}}, ("size",)),
                {"type": "array", "minItems": 1,
                 "items": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}}}]},
        },
        TRAINING_REQUIRED,
    )


def _data() -> dict[str, Any]:
    synthetic = _obj(
        {
            "P": _ref("positive_int"),
            "D": _ref("positive_int"),
            "S": {"anyOf": [_ref("positive_int"), {"type": "null"}]},
            "target": {
                "enum": list(TARGETS),
                "description": "linear, tanh_linear, sign_linear: of X . beta / sqrt(D) (token "
                "mean for sequences); random: y ~ N(0, 1); teacher_attention (token data, S >= 2): "
                "tanh of a fixed single-head attention teacher, query = first token",
            },
            "seed": {"type": "integer", "minimum": 0},
            "test": {"type": "integer", "minimum": 0,
                     "description": "held-out points drawn after the P training points"},
        },
        SYNTHETIC_REQUIRED,
        # token-only targets need S >= 2 (the validator says so with file:line and the fix)
        **{
            "if": {"properties": {"target": {"enum": list(TOKEN_TARGETS)}}, "required": ["target"]},
            "then": {"required": ["S"], "properties": {"S": {"type": "integer", "minimum": 2}}},
        },
    )
    dataset = _obj(
        {
            "name": {"enum": list(DATASETS), "description": "digits: scikit-learn's 8x8 handwritten digits "
                     "(1797 images, D = 64, 10 classes), shipped inside the package (the `data` extra)"},
            "classes": {"type": "array", "minItems": 2, "maxItems": 2, "uniqueItems": True,
                        "items": {"type": "integer", "minimum": 0, "maximum": 9},
                        "description": "two class labels: y = +1 for the first, -1 for the second"},
            "P": _ref("positive_int") | {"description": "training points"},
            "test": {"type": "integer", "minimum": 0,
                     "description": "held-out points, the next ones after the P training points in the shuffle"},
            "seed": {"type": "integer", "minimum": 0, "description": "numpy default_rng seed of the shuffle"},
            "preprocess": {"enum": list(PREPROCESS),
                           "description": "standardize (default): each feature centred and scaled by its std "
                           "over the training points; unit: pixels / 16; none: raw pixels 0..16"},
        },
        DATASET_REQUIRED,
    )
    file = {"type": "string", "description": ".npz relative to the spec's folder"}
    return {
        "oneOf": [
            _obj({"file": file}, ("file",)),
            _obj({"synthetic": synthetic}, ("synthetic",)),
            _obj({"dataset": dataset}, ("dataset",)),
        ]
    }


def _solver() -> dict[str, Any]:
    return _obj(
        {
            "samples": _ref("positive_int"),
            "tol": {"type": "number", "exclusiveMinimum": 0},
            "max_iter": _ref("positive_int"),
            "damping": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "seed": {"type": "integer", "minimum": 0},
            "dtype": {"enum": list(DTYPES)},
            "depth_steps": _ref("positive_int"),
            "batches": {"type": "integer", "minimum": 4, "multipleOf": 2},
            "rtol": {"type": "number", "minimum": 0},
            "atol": {"type": "number", "minimum": 0},
        }
    )
