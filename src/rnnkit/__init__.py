"""rnnkit: recurrent neural networks written from their gate equations.

The public API. Names are imported on first use, so that ``rnnkit --help`` (and anything else
that imports only the command line) starts without importing torch.
"""

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "RNNCell": "rnnkit.cells",
    "LSTMCell": "rnnkit.cells",
    "GRUCell": "rnnkit.cells",
    "RNN": "rnnkit.layers",
    "LSTM": "rnnkit.layers",
    "GRU": "rnnkit.layers",
    "Trace": "rnnkit.trace",
    "InputShapeError": "rnnkit.errors",
    "quantize_dynamic": "rnnkit.conversion",
}

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "GRUCell",
    "InputShapeError",
    "LSTMCell",
    "RNNCell",
    "Trace",
    "quantize_dynamic",
]

if TYPE_CHECKING:
    from rnnkit.cells import GRUCell, LSTMCell, RNNCell
    from rnnkit.conversion import quantize_dynamic
    from rnnkit.errors import InputShapeError
    from rnnkit.layers import GRU, LSTM, RNN
    from rnnkit.trace import Trace


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
