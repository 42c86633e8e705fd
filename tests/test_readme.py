"""The README's Python example runs as written."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocesses and training runs: `make test` runs them

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write run directories
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks, "README.md has no Python example"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})
