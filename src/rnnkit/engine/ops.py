"""The time loops of the bptt engine as PyTorch custom operators (``torch.ops.rnnkit.*``).

Registered with ``torch.library.custom_op``, each with a fake implementation that gives the
shapes of its outputs from the shapes of its inputs. That is what lets torch.compile put the
loops inside a compiled graph (inductor calls them as external kernels, the rest of the model
is compiled around them) and torch.export record them as single nodes, with the sequence length
as a symbol, so an exported program runs at any length. The autograd Functions of lstm.py,
gru.py and rnn.py call these operators; their backward (and its differentiable form for
second-order gradients) is defined there.

Each loop runs in C++ where the loops built (``compiled.py``), else in Python: the same numbers.
The forward loops come in two forms: ``*_forward`` keeps what the backward needs, ``*_infer``
(no backward will come) keeps only what the next step needs and returns the outputs.
Shapes: T steps, B batch, H hidden, G·H the gates (G = 4 LSTM, 3 GRU, 1 RNN).
"""

import importlib

import torch
from torch import Tensor

from rnnkit.engine import compiled


def _loops(tensor: Tensor, kind: str):
    """The C++ loops, or the Python loops of engine/lstm.py, gru.py or rnn.py."""
    return compiled.loops_for(tensor, importlib.import_module(f"rnnkit.engine.{kind}"))


# -- LSTM -------------------------------------------------------------------------------------


@torch.library.custom_op("rnnkit::lstm_forward", mutates_args=())
def lstm_forward(
    x_proj: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """x_proj (T, B, 4H) -> gates (T, B, 4H), c_t, tanh(c_t), h_t (T, B, H each), c_T (B, H)."""
    gates, cells, tanh_cells, outputs, c_last = _loops(x_proj, "lstm").lstm_forward(
        x_proj, h0, c0, w_hh, True
    )
    return gates, cells, tanh_cells, outputs, c_last.clone()


@lstm_forward.register_fake
def _(x_proj, h0, c0, w_hh):
    steps, batch, _ = x_proj.shape
    cells = x_proj.new_empty(steps, batch, h0.shape[-1])
    return (
        torch.empty_like(x_proj),
        cells,
        torch.empty_like(cells),
        torch.empty_like(cells),
        h0.new_empty(h0.shape),
    )


@torch.library.custom_op("rnnkit::lstm_infer", mutates_args=())
def lstm_infer(x_proj: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor) -> tuple[Tensor, Tensor]:
    """x_proj (T, B, 4H) -> h_t (T, B, H), c_T (B, H); nothing kept for a backward pass."""
    *_, outputs, c_last = _loops(x_proj, "lstm").lstm_forward(x_proj, h0, c0, w_hh, False)
    return outputs, c_last.clone()


@lstm_infer.register_fake
def _(x_proj, h0, c0, w_hh):
    steps, batch, _ = x_proj.shape
    return x_proj.new_empty(steps, batch, h0.shape[-1]), h0.new_empty(h0.shape)


@torch.library.custom_op("rnnkit::lstm_backward", mutates_args=())
def lstm_backward(
    gates: Tensor,
    cells: Tensor,
    tanh_cells: Tensor,
    c0: Tensor,
    w_hh: Tensor,
    grad_outputs: Tensor,
    grad_h_n: Tensor,
    grad_c_n: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """-> d(x_proj) (T, B, 4H), dh_0 (B, H), dc_0 (B, H)."""
    grad_gates, grad_h0, grad_c0 = _loops(gates, "lstm").lstm_backward(
        gates, cells, tanh_cells, c0, w_hh, grad_outputs, grad_h_n, grad_c_n
    )
    return grad_gates, grad_h0.clone(), grad_c0.clone()


@lstm_backward.register_fake
def _(gates, cells, tanh_cells, c0, w_hh, grad_outputs, grad_h_n, grad_c_n):
    return torch.empty_like(gates), c0.new_empty(c0.shape), c0.new_empty(c0.shape)


# -- GRU --------------------------------------------------------------------------------------


@torch.library.custom_op("rnnkit::gru_forward", mutates_args=())
def gru_forward(
    x_proj: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """x_proj (T, B, 3H) -> r, z, n (T, B, 3H), W_hn h + b_hn (T, B, H), h_t (T, B, H)."""
    gates, hidden_n, outputs = _loops(x_proj, "gru").gru_forward(x_proj, h0, w_hh, b_hh, True)
    return gates, hidden_n, outputs


@gru_forward.register_fake
def _(x_proj, h0, w_hh, b_hh):
    steps, batch, _ = x_proj.shape
    hidden = x_proj.new_empty(steps, batch, h0.shape[-1])
    return torch.empty_like(x_proj), hidden, torch.empty_like(hidden)


@torch.library.custom_op("rnnkit::gru_infer", mutates_args=())
def gru_infer(x_proj: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """x_proj (T, B, 3H) -> h_t (T, B, H); nothing kept for a backward pass."""
    return _loops(x_proj, "gru").gru_forward(x_proj, h0, w_hh, b_hh, False)[2]


@gru_infer.register_fake
def _(x_proj, h0, w_hh, b_hh):
    steps, batch, _ = x_proj.shape
    return x_proj.new_empty(steps, batch, h0.shape[-1])


@torch.library.custom_op("rnnkit::gru_backward", mutates_args=())
def gru_backward(
    gates: Tensor,
    hidden_n: Tensor,
    outputs: Tensor,
    h0: Tensor,
    w_hh: Tensor,
    grad_outputs: Tensor,
    grad_h_n: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """-> d(x_proj) (T, B, 3H), the recurrent side's d (T, B, 3H), dh_0 (B, H)."""
    grad_x_proj, grad_hh, grad_h0 = _loops(gates, "gru").gru_backward(
        gates, hidden_n, outputs, h0, w_hh, grad_outputs, grad_h_n
    )
    return grad_x_proj, grad_hh, grad_h0.clone()


@gru_backward.register_fake
def _(gates, hidden_n, outputs, h0, w_hh, grad_outputs, grad_h_n):
    return torch.empty_like(gates), torch.empty_like(gates), h0.new_empty(h0.shape)


# -- RNN --------------------------------------------------------------------------------------


@torch.library.custom_op("rnnkit::rnn_forward", mutates_args=())
def rnn_forward(x_proj: Tensor, h0: Tensor, w_hh: Tensor, relu: bool) -> Tensor:
    """x_proj (T, B, H) -> h_t (T, B, H) (all the backward needs)."""
    return _loops(x_proj, "rnn").rnn_forward(x_proj, h0, w_hh, relu)[0]


@rnn_forward.register_fake
def _(x_proj, h0, w_hh, relu):
    return torch.empty_like(x_proj)


@torch.library.custom_op("rnnkit::rnn_backward", mutates_args=())
def rnn_backward(
    outputs: Tensor, w_hh: Tensor, grad_outputs: Tensor, grad_h_n: Tensor, relu: bool
) -> tuple[Tensor, Tensor]:
    """-> d(pre-activation) (T, B, H), dh_0 (B, H)."""
    grad_pre, grad_h0 = _loops(outputs, "rnn").rnn_backward(
        outputs, w_hh, grad_outputs, grad_h_n, relu
    )
    return grad_pre, grad_h0.clone()


@rnn_backward.register_fake
def _(outputs, w_hh, grad_outputs, grad_h_n, relu):
    return torch.empty_like(outputs), grad_h_n.new_empty(grad_h_n.shape)
