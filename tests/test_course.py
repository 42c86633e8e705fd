"""The course (course/NN_name.py): every notebook runs top to bottom with its assertions, and
its page in docs/course/ was executed from the source as it is now."""

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("course_build", ROOT / "course" / "build.py")
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)

SOURCES = build.sources()


def test_the_course_has_its_parts_in_order():
    numbers = [int(s.name[:2]) for s in SOURCES]
    assert numbers == list(range(1, len(SOURCES) + 1)), numbers
    assert len(SOURCES) >= 9


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.stem)
def test_every_notebook_asserts_its_claims(source):
    """A notebook that only shows numbers checks nothing: each holds assertion cells."""
    asserts = [n for n in ast.walk(ast.parse(source.read_text())) if isinstance(n, ast.Assert)]
    assert len(asserts) >= 3, f"{source.name} asserts {len(asserts)} claims"


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.stem)
def test_every_page_was_executed_from_the_current_source(source):
    page = build.page_path(source)
    assert page.is_file(), f"{page} is missing: run `make course-docs`"
    first = page.read_text(encoding="utf-8").splitlines()[0]
    assert first == build.stamp(source), (
        f"{source.name} changed since {page.name} was executed: run `make course-docs`"
    )


@pytest.mark.course
@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.stem)
def test_notebook_runs_top_to_bottom(source, tmp_path, monkeypatch):
    """Every cell runs and every assertion holds (nbclient raises CellExecutionError). One
    thread per kernel: `make test-course` runs two notebooks at once on two cores."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    build.execute(source, tmp_path, timeout=300)
