"""No spec text is ever executed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dmftc.errors import SpecError
from dmftc.spec import load

ROOT = Path(__file__).resolve().parents[2]
BASE = (ROOT / "specs" / "mlp_ntk_relu.yaml").read_text()


@pytest.mark.parametrize(
    "old, new",
    [
        ("lr: eta", "lr: \"__import__('pathlib').Path('{marker}').touch()\""),
        ("lr: eta", "lr: \"exec('open(\\\\'{marker}\\\\', \\\\'w\\\\')')\""),
        ("lr: eta", "lr: \"[open('{marker}', 'w') for _ in (1,)]\""),
        ("{preset: ntk}", "!!python/object/apply:os.system ['touch {marker}']"),
        ("{preset: ntk}", "{preset: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]}"),
        ("N: 1024", "N: !!python/name:os.system"),
    ],
)
def test_executable_text_is_not_executed(tmp_path, old, new):
    marker = tmp_path / "pwned"
    spec = tmp_path / "evil.yaml"
    spec.write_text(BASE.replace(old, new.replace("{marker}", str(marker)), 1))
    with pytest.raises(SpecError) as info:
        load(spec, overrides=[f"description=!!python/object/apply:os.system ['touch {marker}']"])
    assert not marker.exists()
    assert str(spec) in info.value.render()


FORBIDDEN = re.compile(
    r"\beval\(|\bexec\(|sympify|parse_expr\(.*transformations|yaml\.load|unsafe_load|full_load"
    r"|yaml\.Loader\b|FullLoader|UnsafeLoader|allow_pickle=True|pickle\.load"
)


def test_source_uses_no_unsafe_calls():
    for path in sorted((ROOT / "dmftc" / "spec").glob("*.py")):
        if path.name != "types.py":  # its docstring names what is never done
            assert not FORBIDDEN.search(path.read_text()), path
