"""The fast paths registered for a cell definition: the one table keyed by cell.

Every cell runs through its own ``step`` (the reference, nn/recurrence.py). The three cells of
torch.nn also have faster code that computes the same equations, registered here under their
definition's ``kernel`` name and tested against the definition (tests/test_engine.py):

    torch_mode   the mode of torch's fused RNN op (engine/fused.py: torch's kernel)
    cpp_code     the cell's number in the C++ loops (CellKind in kernels/loops.h): the
                 reference's loop as one C++ call, and packed inference
    bptt         one direction through rnnkit's hand-written BPTT (engine/lstm.py, gru.py,
                 rnn.py): (x (T, B, I), initial state, weights, reverse) -> (T, B, H), state
    cpp_step     one step of the one-step cell modules in C++ (kernels/cell_steps.cpp, whose
                 ATen calls autograd records): (loops, x, state, weights) -> state

A definition with no entry (every library cell and every user's cell) has none of these, and
engine/dispatch.py routes all of its calls to the reference.
"""

from collections.abc import Callable
from dataclasses import dataclass

from rnnkit.cells import Cell
from rnnkit.cells.gru import GRU
from rnnkit.cells.lstm import LSTM
from rnnkit.cells.rnn import ElmanRNN
from rnnkit.engine.gru import gru_sequence
from rnnkit.engine.lstm import lstm_sequence
from rnnkit.engine.rnn import rnn_sequence


@dataclass(frozen=True)
class FastPaths:
    torch_mode: str
    cpp_code: int
    bptt: Callable
    cpp_step: Callable


def _summed_bias(weights):
    """b_ih + b_hh: both enter every gate the same way in the LSTM and the RNN, so the loops
    add them once to the input projection."""
    bias = weights.b_ih
    if bias is not None and weights.b_hh is not None:
        bias = bias + weights.b_hh
    return bias


def _lstm_bptt(x, state, weights, reverse):
    output, h, c = lstm_sequence(x, weights.w_ih, _summed_bias(weights), *state, weights.w_hh,
                                 reverse)  # fmt: skip
    return output, (h, c)


def _gru_bptt(x, state, weights, reverse):
    # b_hn sits inside r ⊙ (W_hn h + b_hn), so b_hh goes to the loop; b_ih to the projection.
    output, h = gru_sequence(x, weights.w_ih, weights.b_ih, state[0], weights.w_hh,
                             weights.b_hh, reverse)  # fmt: skip
    return output, (h,)


def _rnn_bptt(relu: bool):
    def bptt(x, state, weights, reverse):
        output, h = rnn_sequence(x, weights.w_ih, _summed_bias(weights), state[0],
                                 weights.w_hh, relu, reverse)  # fmt: skip
        return output, (h,)

    return bptt


def _rnn_step(relu: bool):
    def step(loops, x, state, weights):
        return (loops.rnn_cell_step(x, state[0], *weights, relu),)

    return step


def _lstm_step(loops, x, state, weights):
    return tuple(loops.lstm_cell_step(x, *state, *weights))


def _gru_step(loops, x, state, weights):
    return (loops.gru_cell_step(x, state[0], *weights),)


REGISTERED: dict[str, FastPaths] = {
    "rnn_tanh": FastPaths("RNN_TANH", 0, _rnn_bptt(relu=False), _rnn_step(relu=False)),
    "rnn_relu": FastPaths("RNN_RELU", 1, _rnn_bptt(relu=True), _rnn_step(relu=True)),
    "lstm": FastPaths("LSTM", 2, _lstm_bptt, _lstm_step),
    "gru": FastPaths("GRU", 3, _gru_bptt, _gru_step),
}


def kernel_of(cell: Cell) -> str | None:
    """The registered name of this definition's fast paths, or None. Only the built-in class
    itself qualifies: a subclass (a user's LSTM with its own step) runs its own step."""
    kernel = getattr(cell, "kernel", None)
    if type(cell) is not {"lstm": LSTM, "gru": GRU, "rnn": ElmanRNN}.get(kernel):
        return None
    if kernel == "rnn":
        return f"rnn_{cell.nonlinearity}"  # type: ignore[attr-defined]
    return kernel if kernel in REGISTERED else None


def fast_paths(cell: Cell) -> FastPaths | None:
    kernel = kernel_of(cell)
    return None if kernel is None else REGISTERED[kernel]
