"""The names of the shipped cells, without importing torch (for the command line's help and
choices): the three of torch.nn, then the library. rnnkit.cells.table holds their definitions;
a test checks that the two lists agree. A cell of your own is given as path/to/file.py:Class."""

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
