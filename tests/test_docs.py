"""The documentation is self-contained: nothing cites files outside the repository, links resolve.

The design notes the project started from are not shipped; the code and the docs cite the
repository's own docs/ instead (docs/theory.md, docs/spec.md, docs/architecture.md, ...).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED_DIRS = ("dmftc", "specs", "tests", "benchmarks", "docs")
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".txt", ".toml", ".cfg", ".tex", ".json"}
#: the design notes that are not part of the repository (built so this file does not cite them)
EXTERNAL = re.compile(r"\b(" + "|".join(("THEORY", "SPEC", "ARCHITECTURE", "STYLE")) + r")\.md\b")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CITATION = re.compile(r"\bdocs/([\w.-]+\.md)#([\w-]+)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def _scanned_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for d in SCANNED_DIRS:
        files += [p for p in sorted((ROOT / d).rglob("*"))
                  if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts]
    return [p for p in files if p.resolve() != Path(__file__).resolve()]


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _prose(text: str) -> str:
    """The Markdown without fenced code blocks and inline code spans."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (not - or _), spaces -> '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's slug in a Markdown file (repeated slugs get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = github_slug(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_github_slug():
    assert github_slug("What `repeat`, `residual` and `attention` do") == "what-repeat-residual-and-attention-do"
    assert github_slug("Weight names (every stage relies on this rule)") == \
        "weight-names-every-stage-relies-on-this-rule"
    assert github_slug("`--set` overrides") == "--set-overrides"


def test_nothing_cites_the_design_notes():
    hits = []
    for path in _scanned_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for i, line in enumerate(text.splitlines(), 1):
            if EXTERNAL.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not hits, "cite docs/ instead of the design notes:\n" + "\n".join(hits)


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_links_resolve(path):
    problems = []
    for target in LINK.findall(_prose(path.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):      # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = path if not file_part else (path.parent / file_part).resolve()
        if not dest.exists():
            problems.append(f"{target}: no such file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    assert not problems, f"{path.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_code_citations_of_docs_resolve():
    """`docs/<file>.md#<anchor>` cited in code, specs and tests names an existing section."""
    problems = []
    for path in _scanned_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for name, anchor in CITATION.findall(text):
            dest = ROOT / "docs" / name
            if not dest.exists():
                problems.append(f"{path.relative_to(ROOT)}: docs/{name} does not exist")
            elif anchor not in anchors(dest):
                problems.append(f"{path.relative_to(ROOT)}: docs/{name} has no section #{anchor}")
    assert not problems, "\n".join(problems)
