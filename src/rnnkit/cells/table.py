"""The table of cells: every name the command line and the models accept, and a user's cell
from a file (``--cell path/to/file.py:ClassName``).

A run records the cell it was trained with; for a cell from a file it records the file's
SHA-256 too, and loading the run checks it: a changed file is a clear error, never a model
that silently computes something else. A file is imported only when its path is given.
"""

import functools
import hashlib
import importlib.util
import sys
from pathlib import Path

from rnnkit.cells.cifg_lstm import CIFGLSTM
from rnnkit.cells.definition import Cell, check_cell
from rnnkit.cells.gru import GRU
from rnnkit.cells.indrnn import IndRNN
from rnnkit.cells.layernorm_lstm import LayerNormLSTM
from rnnkit.cells.ligru import LiGRU
from rnnkit.cells.lstm import LSTM
from rnnkit.cells.mingru import MinGRU
from rnnkit.cells.minlstm import MinLSTM
from rnnkit.cells.peephole_lstm import PeepholeLSTM
from rnnkit.cells.rnn import ElmanRNN
from rnnkit.cells.sru import SRU
from rnnkit.errors import UsageError

CELLS: dict[str, type[Cell]] = {
    cell.name: cell
    for cell in (ElmanRNN, LSTM, GRU, LayerNormLSTM, PeepholeLSTM, CIFGLSTM, IndRNN, LiGRU, SRU,
                 MinGRU, MinLSTM)
}  # fmt: skip
"""Every shipped cell by its command-line name: the three of torch.nn, then the library."""

BUILT_IN = ("rnn", "lstm", "gru")
"""The cells torch.nn has: their layers keep torch.nn's classes, names and fast paths."""


def is_file_spec(spec: str) -> bool:
    return ":" in spec and spec.rsplit(":", 1)[0].endswith(".py")


def cell_names() -> str:
    return ", ".join(CELLS)


def cell_from_spec(spec: "str | Cell", expected_sha256: str | None = None) -> Cell:
    """A cell by name, or by ``file.py:Class``; ``expected_sha256`` (a run's record) must
    match the file. A UsageError names what is wrong and how to fix it. A definition itself
    is checked and returned."""
    if isinstance(spec, Cell) or (isinstance(spec, type) and issubclass(spec, Cell)):
        return check_cell(spec)
    if spec in CELLS:
        return _shipped(spec)
    if not is_file_spec(spec):
        raise UsageError(
            f"unknown cell {spec!r}: use one of {cell_names()}, or a cell of your own as "
            "path/to/file.py:ClassName (see docs/cells.md)"
        )
    path_text, class_name = spec.rsplit(":", 1)
    path = Path(path_text)
    if not path.is_file():
        raise UsageError(f"--cell {spec}: no such file {path}; give the path to your cell's file")
    digest = file_sha256(path)
    if expected_sha256 is not None and digest != expected_sha256:
        raise UsageError(
            f"cell file {path} has changed since the run was trained (SHA-256 {digest[:12]}…, "
            f"the run recorded {expected_sha256[:12]}…): restore the file as it was, or train "
            "a new run with the changed cell"
        )
    module = _import_file(path, spec)
    found = getattr(module, class_name, None)
    if found is None:
        raise UsageError(f"--cell {spec}: {path} defines no {class_name!r}")
    if not (isinstance(found, type) and issubclass(found, Cell)):
        raise UsageError(
            f"--cell {spec}: {class_name} is not a subclass of rnnkit.cells.Cell; write "
            "`class {class_name}(Cell)` with gates and step() (docs/cells.md)"
        )
    try:
        return check_cell(found())
    except (TypeError, ValueError) as error:
        raise UsageError(f"--cell {spec}: {error}") from None


@functools.cache
def _shipped(name: str) -> Cell:
    """A shipped cell, checked once (a definition holds no state a layer changes)."""
    return check_cell(CELLS[name]())


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _import_file(path: Path, spec: str):
    name = f"rnnkit_user_cell_{file_sha256(path)[:16]}"
    if name in sys.modules:
        return sys.modules[name]
    loader = importlib.util.spec_from_file_location(name, path)
    if loader is None or loader.loader is None:
        raise UsageError(f"--cell {spec}: cannot import {path} as Python")
    module = importlib.util.module_from_spec(loader)
    sys.modules[name] = module
    try:
        loader.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise UsageError(
            f"--cell {spec}: importing {path} failed: {type(error).__name__}: {error}"
        ) from None
    return module
