"""Atomic writes for the cross-check's outputs (the implementation lives in dmftc.files)."""

from ..files import save_figure_atomic as save_figure_atomic
from ..files import write_json_atomic as write_json_atomic

__all__ = ["save_figure_atomic", "write_json_atomic"]
