"""File and folder names are text from outside dmftc: none of them may become code.

A spec saved as ``net\"\"\"; __import__("os").system(...); \"\"\".yaml`` once closed the generated
module's docstring and ran its command when `solve` imported the module.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dmftc.codegen.emit import SAFE_PATH, check_module, regenerate_command
from dmftc.errors import CodegenError
from dmftc.program import compile_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "mlp_ntk_relu.yaml"

#: names a careless or hostile user can give a file or a folder on Linux (no "/" and no NUL)
HOSTILE = [
    'net"""; __import__("os").system("touch PWNED"); """',
    "net'''; __import__('os').system('touch PWNED'); '''",
    'a\\N{bad}\\x00\\',                     # an escape a docstring would interpret (or fail on)
    'line1\nimport os; os.system("touch PWNED")\n#',
    "tab\there {curly} $dollar `tick` ~",
    "ünïcödé ℕ",
]


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("where", ["file", "folder"])
def test_a_hostile_name_never_reaches_the_module(tmp_path, monkeypatch, name, where):
    folder = tmp_path / (name if where == "folder" else "plain")
    folder.mkdir()
    path = folder / (f"{name}.yaml" if where == "file" else "net.yaml")
    shutil.copy(SPEC, path)
    monkeypatch.chdir(tmp_path)   # the module shows the path relative to the current folder
    prog = compile_spec(os.path.relpath(path))
    assert name not in prog.module and "PWNED" not in prog.module
    assert "the path of the spec is not shown" in prog.module
    prog.load_module()            # importing runs the module's top level: nothing of the name may run
    assert not list(tmp_path.rglob("PWNED"))


def test_a_plain_path_is_shown_as_given(tmp_path, monkeypatch):
    (tmp_path / "specs").mkdir()
    shutil.copy(SPEC, tmp_path / "specs" / "net-1.v2.yaml")
    monkeypatch.chdir(tmp_path)
    assert "Regenerate with: dmftc compile specs/net-1.v2.yaml\n" in compile_spec("specs/net-1.v2.yaml").module


@pytest.mark.parametrize("text", [p + ".yaml" for p in HOSTILE] + ["", "a" * 201, "a b.yaml", "x{y}.yaml"])
def test_the_regenerate_line_shows_only_whitelisted_paths(text):
    line = regenerate_command(text)
    assert line == f"dmftc compile {text}" if SAFE_PATH.fullmatch(text) else "is not shown" in line
    assert not set(line) & set("\"'\\\n{}")


@pytest.mark.parametrize("injected", [
    '"""doc"""\nimport jax\n__import__("os").system("id")\n',
    '"""doc"""\nimport os\n',
    '"""doc"""\nfrom subprocess import run\n',
    '"""doc"""\nif True:\n    x = 1\n',
    'import jax\n',                       # no docstring
    '"""doc\n',                           # does not parse
])
def test_check_module_refuses_what_the_emitter_never_writes(injected):
    with pytest.raises(CodegenError):
        check_module(injected)


def test_every_example_module_passes_the_check():
    for path in sorted((ROOT / "generated").glob("*.py")):
        check_module(path.read_text())
