"""The spec stage: a YAML spec file -> a validated, immutable `Spec`.

Public API (see docs/spec.md for the format):

- `load(path, overrides=())`, `loads(text, filename, overrides, base_dir)`: read and validate;
- `parse_expr(value, symbols, location)`: the whitelist expression parser;
- `assign_names(ops)`, `weight_names(ops)`: the weight naming rule;
- `json_schema()`: a JSON Schema (draft 2020-12) of the format;
- `load_data(spec)`, `load_test(spec)`: the training arrays (X, y) and the held-out ones, deterministically;
- `symbol_values(spec)`: exact values of the size and hyper symbols;
- `synthetic_data(data)`, `dataset_data(data)`: the arrays of a `Synthetic` or a `Dataset` description.
"""

from .data import dataset_data as dataset_data
from .data import load_data as load_data
from .data import load_test as load_test
from .data import synthetic_data as synthetic_data
from .expr import FUNCTIONS as FUNCTIONS
from .expr import parse_expr as parse_expr
from .loader import load as load
from .loader import loads as loads
from .loader import symbol_values as symbol_values
from .naming import assign_names as assign_names
from .naming import weight_names as weight_names
from .schema import json_schema as json_schema
from .types import (
    ACTIVATIONS as ACTIVATIONS,
    LOSSES as LOSSES,
    OPTIMIZERS as OPTIMIZERS,
    PRESETS as PRESETS,
    TARGETS as TARGETS,
    Act as Act,
    Attention as Attention,
    DATASETS as DATASETS,
    Dataset as Dataset,
    DataFile as DataFile,
    Dense as Dense,
    LayerNorm as LayerNorm,
    Op as Op,
    Parameterization as Parameterization,
    Pool as Pool,
    Readout as Readout,
    Repeat as Repeat,
    Residual as Residual,
    SolverOptions as SolverOptions,
    Spec as Spec,
    Synthetic as Synthetic,
    Training as Training,
    WeightOverride as WeightOverride,
)

__all__ = [
    "load", "loads", "parse_expr", "assign_names", "weight_names", "json_schema", "load_data", "load_test",
    "synthetic_data", "dataset_data", "symbol_values", "FUNCTIONS",
    "ACTIVATIONS", "DATASETS", "LOSSES", "OPTIMIZERS", "PRESETS", "TARGETS",
    "Act", "Attention", "Dataset", "DataFile", "Dense", "LayerNorm", "Op", "Parameterization", "Pool",
    "Readout", "Repeat", "Residual", "SolverOptions", "Spec", "Synthetic", "Training", "WeightOverride",
]
