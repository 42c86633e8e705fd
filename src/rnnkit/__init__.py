"""rnnkit: recurrent neural networks written from their gate equations.

The public API. Names are imported on first use, so that ``rnnkit --help`` (and anything else
that imports only the command line) starts without importing torch.
"""

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "RNNCell": "rnnkit.nn.cells",
    "LSTMCell": "rnnkit.nn.cells",
    "GRUCell": "rnnkit.nn.cells",
    "RNN": "rnnkit.nn.layers",
    "LSTM": "rnnkit.nn.layers",
    "GRU": "rnnkit.nn.layers",
    "Recurrent": "rnnkit.nn.layers",
    "RecurrentCell": "rnnkit.nn.cells",
    "Cell": "rnnkit.cells",
    "Weight": "rnnkit.cells",
    "LinearCell": "rnnkit.cells",
    "Trace": "rnnkit.nn.trace",
    "InputShapeError": "rnnkit.errors",
    "quantize_dynamic": "rnnkit.nn.conversion",
}

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Cell",
    "GRUCell",
    "InputShapeError",
    "LSTMCell",
    "LinearCell",
    "RNNCell",
    "Recurrent",
    "RecurrentCell",
    "Trace",
    "Weight",
    "quantize_dynamic",
]

if TYPE_CHECKING:
    from rnnkit.cells import Cell, Weight
    from rnnkit.errors import InputShapeError
    from rnnkit.nn.cells import GRUCell, LSTMCell, RecurrentCell, RNNCell
    from rnnkit.nn.conversion import quantize_dynamic
    from rnnkit.nn.layers import GRU, LSTM, RNN, Recurrent
    from rnnkit.nn.trace import Trace


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
