"""The Python examples of the README and the pages it points to run as written."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocesses and training runs: `make test` runs them

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/layers.md", "docs/tasks.md"]


@pytest.mark.parametrize("page", PAGES)
def test_python_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write run directories
    path = ROOT / page
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks, f"{page} has no Python example"
    for block in blocks:
        exec(compile(block, str(path), "exec"), {})
