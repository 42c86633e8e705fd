"""A run's record of a cell from a file: its SHA-256, so that loading the run imports only the
code it was trained with (a changed file is a clear error, exit 2), for the language model's
runs and the tasks' alike. A shipped cell needs no record: its name is the definition."""

import json
from pathlib import Path

from rnnkit.cell_names import CELL_NAMES
from rnnkit.cells import Cell, cell_from_spec
from rnnkit.cells.table import file_sha256
from rnnkit.errors import UsageError

CELL_RECORD = "cell.json"


def record_cell(run_dir: Path, spec: str) -> None:
    """For a cell from a file, write its SHA-256 into the run (nothing for a shipped cell)."""
    if spec in CELL_NAMES:
        return
    path = Path(spec.rsplit(":", 1)[0])
    if not path.is_file():
        raise UsageError(f"--cell {spec}: no such file {path}")
    record = {"cell": spec, "sha256": file_sha256(path)}
    (run_dir / CELL_RECORD).write_text(json.dumps(record, indent=2) + "\n")


def run_cell(spec: str, run_dir: Path | None) -> "str | Cell":
    """The run's cell: a shipped one by name (or any cell while a run is being started,
    ``run_dir`` None: the user named it), or the file the run was trained with, imported only
    if its SHA-256 is the one the run recorded (a changed file is a UsageError)."""
    if spec in CELL_NAMES or run_dir is None:
        return spec
    record = Path(run_dir) / CELL_RECORD
    if not record.is_file():
        raise UsageError(
            f"{run_dir} was trained with the cell {spec} but has no {CELL_RECORD} recording "
            "the file's SHA-256; the cell is not imported unchecked: train the run again"
        )
    try:
        expected = json.loads(record.read_text())["sha256"]
        if not isinstance(expected, str):
            raise TypeError(f"sha256 should be a string, got {type(expected).__name__}")
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(
            f"{record} is corrupted ({error}); the cell is not imported unchecked: train the "
            "run again"
        ) from None
    return cell_from_spec(spec, expected_sha256=expected)
