"""The training data of a spec, as arrays of the simulation's dtype."""

from __future__ import annotations

import numpy as np

from ..errors import DmftcError
from ..spec.types import Spec

Data = tuple[np.ndarray, np.ndarray]


def spec_data(spec: Spec, data: Data | None = None) -> Data:
    """(X, y) checked: X (P, D) or (P, S, D), y (P,); from `dmftc.spec.load_data` unless given."""
    if data is None:
        try:
            from ..spec import load_data
        except ImportError as exc:  # the loader is a separate piece of work
            raise DmftcError("dmftc.spec.load_data is not available; pass data=(X, y)") from exc
        data = load_data(spec)
    X, y = (np.asarray(a) for a in data)
    if X.ndim not in (2, 3) or y.shape != X.shape[:1]:
        raise DmftcError(f"data for spec {spec.name!r}: X must be (P, D) or (P, S, D) and y (P,); "
                         f"got X {X.shape}, y {y.shape}")
    return X, y
