"""The docs name files that exist: a renamed or deleted file is caught here, not by a reader."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "rnnkit"
COURSE = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "course").glob("[0-9][0-9]_*.py"))
PAGES = [
    "README.md",
    *(f"docs/{name}.md" for name in ("architecture", "cells", "language-model", "tasks", "layers")),
]
DOCS = [*PAGES, *COURSE]
NAMED = re.compile(r"(?<![\w./*-])((?:[\w-]+/)*[\w-]+\.(?:py|cpp|h|md|json|jsonl|toml))\b")
# Files a run or a user makes, and placeholders: named in the docs, never in the repository.
NOT_OURS = {"config.json", "task.json", "vocab.json", "test_metrics.json", "cell.json",
            "settings.toml", "some.py", "file.py", "NN_name.py"}  # fmt: skip


def exists(name: str) -> bool:
    """As the docs write paths: from the repository, the package, its parts, or docs/."""
    bases = [ROOT, ROOT / "src", PACKAGE, ROOT / "docs"]
    bases += [p for p in PACKAGE.iterdir() if p.is_dir()]
    return any((base / name).exists() for base in bases)


@pytest.mark.parametrize("doc", DOCS)
def test_every_file_a_doc_names_exists(doc):
    text = (ROOT / doc).read_text(encoding="utf-8")
    named = {m for m in NAMED.findall(text) if not m.startswith(("my_", "path/"))}
    named = {m for m in named if m.rsplit("/", 1)[-1] not in NOT_OURS}
    missing = sorted(n for n in named if not exists(n))
    assert not missing, f"{doc} names files that do not exist: {missing}"


@pytest.mark.parametrize("package", ["nn", "engine", "cells"])
def test_a_package_docstring_that_lists_its_files_lists_them_all(package):
    folder = PACKAGE / package
    docstring = (folder / "__init__.py").read_text(encoding="utf-8").split('"""')[1]
    listed = set(re.findall(r"\b(\w+\.py)\b", docstring))
    if not listed:
        pytest.skip(f"rnnkit.{package}'s docstring lists no files")
    present = {p.name for p in folder.glob("*.py")} - {"__init__.py"}
    assert present <= listed, f"rnnkit.{package}'s docstring leaves out {sorted(present - listed)}"
