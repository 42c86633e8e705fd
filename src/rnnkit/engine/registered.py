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
    loops        the module of the BPTT's Python loops (engine/lstm.py, ...), whose names the
                 C++ loops share, and ``forward_step``: one step of its forward loop for
                 generation, (loops, x_proj (N, G·H), state, w_hh, b_hh) -> state

A definition with no entry (every library cell and every user's cell) has none of these, and
engine/dispatch.py routes all of its calls to the reference.
"""

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from rnnkit.cells import Cell
from rnnkit.cells.gru import GRU
from rnnkit.cells.lstm import LSTM
from rnnkit.cells.rnn import ElmanRNN
from rnnkit.engine import gru, lstm, rnn
from rnnkit.engine.gru import gru_sequence
from rnnkit.engine.lstm import lstm_sequence
from rnnkit.engine.rnn import rnn_sequence


@dataclass(frozen=True)
class FastPaths:
    torch_mode: str
    cpp_code: int
    bptt: Callable
    cpp_step: Callable
    loops: ModuleType
    forward_step: Callable
    sums_biases: bool  # b_hh enters every gate as b_ih does: the loops take b_ih + b_hh
    # torch's fused kernel measured faster than rnnkit's loops for this cell in float32 on the
    # CPU (oneDNN's LSTM; docs/performance.md), so auto takes it there
    torch_kernel_first: bool = False


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


def _rnn_forward_step(relu: bool):
    def step(loops, x_proj, state, w_hh, b_hh):
        (outputs,) = loops.rnn_forward(x_proj[None], state[0], w_hh, relu)
        return (outputs[0],)

    return step


def _lstm_forward_step(loops, x_proj, state, w_hh, b_hh):
    *_, outputs, c = loops.lstm_forward(x_proj[None], state[0], state[1], w_hh, False)
    return (outputs[0], c)


def _gru_forward_step(loops, x_proj, state, w_hh, b_hh):
    if b_hh is None:  # the loop takes a tensor
        b_hh = w_hh.new_zeros(w_hh.shape[0])
    _, _, outputs = loops.gru_forward(x_proj[None], state[0], w_hh, b_hh, False)
    return (outputs[0],)


REGISTERED: dict[str, FastPaths] = {
    "rnn_tanh": FastPaths("RNN_TANH", 0, _rnn_bptt(relu=False), _rnn_step(relu=False), rnn,
                          _rnn_forward_step(relu=False), True),
    "rnn_relu": FastPaths("RNN_RELU", 1, _rnn_bptt(relu=True), _rnn_step(relu=True), rnn,
                          _rnn_forward_step(relu=True), True),
    "lstm": FastPaths("LSTM", 2, _lstm_bptt, _lstm_step, lstm, _lstm_forward_step, True, True),
    "gru": FastPaths("GRU", 3, _gru_bptt, _gru_step, gru, _gru_forward_step, False),
}  # fmt: skip


def kernel_of(cell: Cell) -> str | None:
    """The registered name of this definition's fast paths, or None. Only the built-in class
    itself qualifies: a subclass (a user's LSTM with its own step) runs its own step."""
    if type(cell) not in (LSTM, GRU, ElmanRNN):
        return None
    return cell.kernel if cell.kernel in REGISTERED else None


def fast_paths(cell: Cell) -> FastPaths | None:
    kernel = kernel_of(cell)
    return None if kernel is None else REGISTERED[kernel]
