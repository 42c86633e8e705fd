"""RNNCell, LSTMCell and GRUCell: one time step, drop-in replacements for torch.nn's cells.

Same constructor arguments, parameter names (weight_ih, weight_hh, bias_ih, bias_hh), shapes,
initialisation (every parameter uniform in ±1/sqrt(hidden_size)) and input forms (batched (B, I)
or unbatched (I,)) as torch.nn. The arithmetic is in :mod:`rnnkit.nn.equations`; on the CPU a
step runs the same equations written in C++ (engine/kernels/cell_steps.cpp; when, in
rnnkit.engine.dispatch.cell_steps).
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.arguments import check_bool, check_nonlinearity, check_size
from rnnkit.engine.dispatch import cell_steps
from rnnkit.errors import InputShapeError
from rnnkit.nn.conversion import TorchTwin
from rnnkit.nn.equations import GATE_COUNT, gru_step, lstm_step, rnn_step


class _CellBase(TorchTwin, nn.Module):
    """Parameters, initialisation and input checks common to the three cells."""

    kind = ""  # "RNN", "LSTM" or "GRU"

    def __init__(self, input_size: int, hidden_size: int, bias: bool, device=None, dtype=None):
        super().__init__()
        # torch.nn's cells allow sizes of 0 (empty tensors), its layers do not.
        check_size("input_size", input_size, allow_zero=True)
        check_size("hidden_size", hidden_size, allow_zero=True)
        check_bool("bias", bias)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        gate_size = GATE_COUNT[self.kind] * hidden_size
        factory = {"device": device, "dtype": dtype}
        self.weight_ih = nn.Parameter(torch.empty(gate_size, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(gate_size, hidden_size, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(gate_size, **factory))
            self.bias_hh = nn.Parameter(torch.empty(gate_size, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch.nn's rule: every weight and bias uniform in [-1/sqrt(H), 1/sqrt(H)]."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            text += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            text += f", nonlinearity={self.nonlinearity}"
        return text

    def _batched_input(self, input: Tensor) -> tuple[Tensor, bool]:
        """Check the input and give it a batch dimension: (I,) -> (1, I)."""
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
        if input.dim() not in (1, 2):
            raise InputShapeError(
                f"{self.kind}Cell: Expected input to be 1D or 2D, got {input.dim()}D instead "
                f"({name}: the input is (input_size,) or (batch, input_size); got shape "
                f"{tuple(input.shape)})"
            )
        if input.size(-1) != self.input_size:
            raise InputShapeError(
                f"{name}: input has inconsistent input_size: got {input.size(-1)} expected "
                f"{self.input_size} (the last dimension of the input must be input_size)"
            )
        if input.dtype != self.weight_ih.dtype:
            raise InputShapeError(
                f"{name}: input dtype ({input.dtype}) does not match weight dtype "
                f"({self.weight_ih.dtype}). Convert input: input.to({self.weight_ih.dtype}), "
                f"or convert model: model.to({input.dtype})"
            )
        is_batched = input.dim() == 2
        return (input if is_batched else input.unsqueeze(0)), is_batched

    def _batched_state(
        self, state: Tensor | None, index: int, input: Tensor, is_batched: bool
    ) -> Tensor:
        """Check state number ``index`` (h: 0, the LSTM's c: 1) against the (batched) input;
        zeros when it is None. Messages start with torch.nn's text for the same problem."""
        batch = input.size(0)
        if state is None:
            return input.new_zeros(batch, self.hidden_size)
        name = type(self).__name__
        what = f"hx[{index}]" if self.kind == "LSTM" else "hx"
        if not isinstance(state, Tensor):
            raise TypeError(f"{name}: {what} must be a Tensor, got {type(state).__name__}")
        expected = (batch, self.hidden_size) if is_batched else (self.hidden_size,)
        fix = f"({name}: {what} must have shape {expected} for this input)"
        if state.dim() not in (1, 2):
            held = f"hx[{index}]" if self.kind == "LSTM" else "hidden"
            raise InputShapeError(
                f"{self.kind}Cell: Expected {held} to be 1D or 2D, got {state.dim()}D instead {fix}"
            )
        if not is_batched and state.dim() != 1:
            raise InputShapeError(
                f"{name}: for unbatched 1-D input {what} must have shape {expected}, got "
                f"{tuple(state.shape)}"
            )
        batched = state if state.dim() == 2 else state.unsqueeze(0)
        if batched.size(0) != batch:
            raise InputShapeError(
                f"Input batch size {batch} doesn't match hidden{index} batch size "
                f"{batched.size(0)} {fix}"
            )
        if batched.size(1) != self.hidden_size:
            raise InputShapeError(
                f"hidden{index} has inconsistent hidden_size: got {batched.size(1)}, expected "
                f"{self.hidden_size} {fix}"
            )
        if tuple(state.shape) != expected:
            form = "batched 2-D" if is_batched else "unbatched 1-D"
            raise InputShapeError(
                f"{name}: for {form} input {what} must have shape {expected}, got "
                f"{tuple(state.shape)}"
            )
        if state.dtype != input.dtype:
            raise InputShapeError(
                f"{name}: {what} dtype ({state.dtype}) does not match input dtype "
                f"({input.dtype}); convert it with .to({input.dtype})"
            )
        return batched

    def _weights(self) -> tuple:
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    def _input_projection(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight_ih, self.bias_ih)  # (B, G·H)


class RNNCell(_CellBase):
    """An Elman RNN cell: h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu).

    Args: input_size, hidden_size, bias=True, nonlinearity="tanh" | "relu", device, dtype.
    Input: x (B, I) or (I,), h (B, H) or (H,) or None (zeros). Output: h' (B, H) or (H,).
    Parameters: weight_ih (H, I), weight_hh (H, H), bias_ih (H,), bias_hh (H,).
    """

    kind = "RNN"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device=None,
        dtype=None,
    ) -> None:
        check_nonlinearity(nonlinearity)
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, is_batched = self._batched_input(input)
        h = self._batched_state(hx, 0, x, is_batched)
        compiled = cell_steps(x)
        if compiled is not None:  # the same equations in C++ (kernels/cell_steps.cpp)
            h = compiled.rnn_cell_step(x, h, *self._weights(), self.nonlinearity == "relu")
        else:
            h = rnn_step(
                self._input_projection(x), h, self.weight_hh, self.bias_hh, self.nonlinearity
            )
        return h if is_batched else h.squeeze(0)


class LSTMCell(_CellBase):
    """An LSTM cell, gate order i, f, g, o (see :func:`rnnkit.nn.equations.lstm_step`).

    Args: input_size, hidden_size, bias=True, device, dtype.
    Input: x (B, I) or (I,), hx = (h, c) each (B, H) or (H,), or None (zeros).
    Output: (h', c'), each (B, H) or (H,).
    Parameters: weight_ih (4H, I), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,).
    """

    kind = "LSTM"

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        x, is_batched = self._batched_input(input)
        if hx is None:
            h = c = None
        elif isinstance(hx, (tuple, list)) and len(hx) == 2:
            h, c = hx
        else:
            raise TypeError(
                "LSTMCell: hx must be a tuple (h_0, c_0) of the hidden and cell states, got "
                f"{type(hx).__name__}"
            )
        h = self._batched_state(h, 0, x, is_batched)
        c = self._batched_state(c, 1, x, is_batched)
        compiled = cell_steps(x)
        if compiled is not None:  # the same equations in C++ (kernels/cell_steps.cpp)
            h, c = compiled.lstm_cell_step(x, h, c, *self._weights())
        else:
            h, c, _ = lstm_step(self._input_projection(x), h, c, self.weight_hh, self.bias_hh)
        return (h, c) if is_batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(_CellBase):
    """A GRU cell, gate order r, z, n (see :func:`rnnkit.nn.equations.gru_step`).

    Args: input_size, hidden_size, bias=True, device, dtype.
    Input: x (B, I) or (I,), h (B, H) or (H,) or None (zeros). Output: h' (B, H) or (H,).
    Parameters: weight_ih (3H, I), weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,).
    """

    kind = "GRU"

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, is_batched = self._batched_input(input)
        h = self._batched_state(hx, 0, x, is_batched)
        compiled = cell_steps(x)
        if compiled is not None:  # the same equations in C++ (kernels/cell_steps.cpp)
            h = compiled.gru_cell_step(x, h, *self._weights())
        else:
            h, _ = gru_step(self._input_projection(x), h, self.weight_hh, self.bias_hh)
        return h if is_batched else h.squeeze(0)


CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}
"""The one-step cell class of each cell name (--cell rnn|lstm|gru), as nn.layers.LAYERS."""
