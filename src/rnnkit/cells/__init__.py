"""Recurrent cells as definitions: their parameters and one step, in plain torch operations.

``Cell`` and ``Weight`` are the API a cell is written in (rnnkit.cells.definition); ``CELLS``
is the table of shipped cells by name (rnnkit.cells.table). This package is the bottom of
rnnkit's import order: the layers, the engines and every tool are built on it.
"""

from rnnkit.cells.definition import Cell, Parameters, Weight, check_cell
from rnnkit.cells.linear import LinearCell
from rnnkit.cells.table import BUILT_IN, CELLS, cell_from_spec

__all__ = [
    "BUILT_IN",
    "CELLS",
    "Cell",
    "LinearCell",
    "Parameters",
    "Weight",
    "cell_from_spec",
    "check_cell",
]
