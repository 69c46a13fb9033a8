"""The contributor's map stays true: every generated report names the command that rewrites
it, committed text names no absolute checkout path, and relative markdown links resolve."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT = [ROOT / "README.md", ROOT / "FORMAT.md", ROOT / "runtime" / "README.md",
        *sorted((ROOT / "docs").rglob("*")), *sorted((ROOT / "tools").rglob("*")), *sorted((ROOT / "models").glob("*.py"))]
TEXT = [p for p in TEXT if p.is_file() and p.suffix in (".md", ".py", ".sh", ".json", ".jsonl")]


@pytest.mark.parametrize("path", sorted((ROOT / "docs" / "results").rglob("*.md")), ids=lambda p: p.name)
def test_every_result_names_its_command(path):
    head = path.read_text().splitlines()[:3]
    assert head[0].startswith("# ") and head[2].startswith("Regenerate: `python "), f"{path}: no Regenerate line"


def test_no_absolute_checkout_paths():
    bad = [f"{p.relative_to(ROOT)}:{i}" for p in TEXT for i, line in enumerate(p.read_text().splitlines(), 1)
           if re.search(r"(?<![\w.])/(work|root|home)/", line)]
    assert not bad, bad


def test_relative_markdown_links_resolve():
    broken = []
    for p in (q for q in TEXT if q.suffix == ".md"):
        for target in re.findall(r"\]\(([^)\s]+)\)", p.read_text()):
            if "://" in target or target.startswith("#"):
                continue
            if not (p.parent / target.split("#")[0]).exists():
                broken.append(f"{p.relative_to(ROOT)}: {target}")
    assert not broken, broken
