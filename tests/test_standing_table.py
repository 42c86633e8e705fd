"""docs/performance.md opens with bench/standing.py's table of where rnnkit stands: the page
shows exactly what bench/standing.json holds (no row edited by hand), and every target has a
measured row."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def standing():
    bench = str(ROOT / "bench")
    sys.path.insert(0, bench)  # it imports speed.py, cells.py and sampling_batch.py beside it
    try:
        spec = importlib.util.spec_from_file_location("standing", ROOT / "bench" / "standing.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(bench)
    return module


def test_the_page_shows_what_the_measurements_hold(standing):
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    results = json.loads((ROOT / "bench" / "standing.json").read_text(encoding="utf-8"))
    shown = page[page.index(standing.BEGIN) : page.index(standing.END) + len(standing.END)]
    assert shown == standing.render(results), (
        "docs/performance.md's table differs from bench/standing.json: write it with "
        "`.venv/bin/python bench/standing.py --from-json bench/standing.json --write "
        "docs/performance.md`"
    )


def test_every_target_has_a_measured_row(standing):
    results = json.loads((ROOT / "bench" / "standing.json").read_text(encoding="utf-8"))
    assert {row["name"] for row in results["rows"]} == {t.name for t in standing.TARGETS}
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    for target in standing.TARGETS:
        assert target.section in anchors(page), f"no section {target.section!r} on the page"


def anchors(page: str) -> set[str]:
    """GitHub's anchors of the page's headings: lower case, punctuation but - and _ dropped,
    spaces to -."""
    found = set()
    for line in page.splitlines():
        if line.startswith("## "):
            title = line[3:].strip().lower()
            kept = "".join(ch for ch in title if ch.isalnum() or ch in " -_")
            found.add(kept.replace(" ", "-"))
    return found
