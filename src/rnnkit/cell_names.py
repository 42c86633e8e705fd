"""The names of the shipped cells, without importing torch (for the command line's help and
choices): the three of torch.nn, then the library. rnnkit.cells.table holds their definitions;
a test checks that the two lists agree. A cell of your own is given as path/to/file.py:Class."""

from pathlib import Path

from rnnkit.errors import UsageError

CELL_NAMES = (
    "rnn",
    "lstm",
    "gru",
    "layernorm_lstm",
    "peephole_lstm",
    "cifg_lstm",
    "indrnn",
    "ligru",
    "sru",
    "mingru",
    "minlstm",
)

CELL_HELP = (
    f"recurrent cell: {', '.join(CELL_NAMES)}, or a cell of your own as path/to/file.py:ClassName "
    "(docs/cells.md)"
)


def is_cell_spec(value: str) -> bool:
    """A shipped cell's name, or file.py:Class."""
    return value in CELL_NAMES or (":" in value and value.rsplit(":", 1)[0].endswith(".py"))


def checked_cell_spec(value: str) -> str:
    """``value`` as a run records it: a shipped name as it is, a file by its absolute path
    (so the run finds it from any directory); a UsageError for anything else."""
    if not is_cell_spec(value):
        raise UsageError(
            f"unknown cell {value!r}: use one of {', '.join(CELL_NAMES)}, or a cell of your own "
            "as path/to/file.py:ClassName (docs/cells.md)"
        )
    if value in CELL_NAMES:
        return value
    path, name = value.rsplit(":", 1)
    return f"{Path(path).resolve()}:{name}"
