"""Recurrent cells as definitions: their parameters and one step, in plain torch operations.

``Cell`` and ``Weight`` are the API a cell is written in (rnnkit.cells.definition); ``CELLS``
is the table of shipped cells by name (rnnkit.cells.table). This package is the bottom of
rnnkit's import order: the layers, the engines and every tool are built on it.

    definition.py      Cell, Weight, Parameters: the API a cell is written in; check_cell
    linear.py          LinearCell: a cell whose recurrence is linear in h (scanned)
    table.py           CELLS, the shipped cells by name; a user's cell from a spec
    rnn.py, lstm.py, gru.py
                       torch.nn's three cells, in torch.nn's gate order
    layernorm_lstm.py, peephole_lstm.py, cifg_lstm.py
                       LSTM variants
    indrnn.py, ligru.py
                       an element-wise recurrence; the light GRU
    mingru.py, minlstm.py, sru.py
                       linear in h: minGRU, minLSTM, the simple recurrent unit
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
