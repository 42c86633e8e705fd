"""One time step of any cell as a module; RNNCell, LSTMCell and GRUCell, drop-in replacements
for torch.nn's cells.

``RecurrentCell(cell, input_size, hidden_size)`` runs one step of any definition
(rnnkit.cells). The three built-in classes have torch.nn's constructor arguments, parameter
names (weight_ih, weight_hh, bias_ih, bias_hh), shapes, initialisation (every parameter uniform
in ±1/sqrt(hidden_size)) and input forms (batched (B, I) or unbatched (I,)). The arithmetic is
the cell's step; on the CPU the built-ins run the same equations written in C++
(engine/kernels/cell_steps.cpp, registered in engine/registered.py; when, in
rnnkit.engine.dispatch.cell_steps).
"""

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.arguments import check_nonlinearity, check_size
from rnnkit.cells import Cell, Parameters, cell_from_spec, check_cell
from rnnkit.cells.definition import initialise
from rnnkit.cells.gru import GRU as GRUDefinition
from rnnkit.cells.lstm import LSTM as LSTMDefinition
from rnnkit.cells.rnn import ElmanRNN
from rnnkit.engine.dispatch import cell_steps
from rnnkit.engine.registered import fast_paths
from rnnkit.errors import InputShapeError
from rnnkit.nn.conversion import TorchTwin


class RecurrentCell(TorchTwin, nn.Module):
    """One step of any cell: ``cell`` is a definition (rnnkit.cells) or a shipped cell's name.

    Input: x (B, I) or (I,); hx: h (one state) or a tuple in the order of ``cell.states``, or
    None (zeros). Output: the new state in the same form. Parameters: weight_ih, weight_hh,
    bias_ih, bias_hh as the cell declares them, and the cell's own parameters.
    """

    kind = ""  # the name in torch.nn's messages ("LSTM" for LSTMCell), or the cell's name

    def __init__(
        self, cell: Cell | type[Cell] | str, input_size: int, hidden_size: int,
        bias: bool = True, device=None, dtype=None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.cell = cell_from_spec(cell) if isinstance(cell, str) else check_cell(cell)
        if not self.kind:
            self.kind = type(self.cell).__name__
        # torch.nn's cells allow sizes of 0 (empty tensors), its layers do not.
        check_size("input_size", input_size, allow_zero=True)
        check_size("hidden_size", hidden_size, allow_zero=True)
        if not isinstance(bias, bool):  # torch.nn's cells take any value, by its truth
            warnings.warn(
                f"bias={bias!r} is not a bool; taken as {bool(bias)}, as torch.nn takes it",
                stacklevel=3,
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        factory = {"device": device, "dtype": dtype}
        shapes = self.cell.weight_shapes(input_size, hidden_size, 0, bias)
        for name, shape in shapes.items():
            setattr(self, name, nn.Parameter(torch.empty(shape, **factory)))
        if not bias:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self._names = list(shapes)
        self._state_count = len(self.cell.states)
        self._registered = fast_paths(self.cell)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch.nn's rule: every weight and bias uniform in [-1/sqrt(H), 1/sqrt(H)]; a cell's
        own parameter as its Weight says."""
        for name in self._names:
            initialise(getattr(self, name), self.cell.init_of(name), self.hidden_size)

    def forward(self, input: Tensor, hx=None):
        if self._plain(input, hx):  # a cell called in a loop: every check below would pass
            state = (hx,) if isinstance(hx, Tensor) else tuple(hx)
            new_state = self._run(input, state)
            return new_state if len(new_state) > 1 else new_state[0]
        x, is_batched = self._batched_input(input)
        several = len(self.cell.states) > 1
        if hx is None:
            given = (None,) * len(self.cell.states)
        elif several and isinstance(hx, (tuple, list)) and len(hx) == len(self.cell.states):
            given = tuple(hx)
        elif several:
            names = ", ".join(f"{name}_0" for name in self.cell.states)
            raise TypeError(
                f"{type(self).__name__}: hx must be a tuple ({names}) of the states, got "
                f"{type(hx).__name__}"
            )
        else:
            given = (hx,)
        state = tuple(self._batched_state(s, index, x, is_batched) for index, s in enumerate(given))
        self._check_dtype(x)  # after the shapes, in torch.nn's order
        state = self._run(x, state)
        if not is_batched:
            state = tuple(s.squeeze(0) for s in state)
        return state if several else state[0]

    def _plain(self, input, hx) -> bool:
        """Batched input and every state given, each a tensor of exactly the shape and dtype
        the checks ask for (the cheap test that lets a loop of calls skip them)."""
        if not isinstance(input, Tensor) or input.dim() != 2:
            return False
        dtype = self._parameter("weight_ih").dtype
        if input.dtype != dtype or input.shape[1] != self.input_size:
            return False
        if self._state_count == 1:
            if not isinstance(hx, Tensor):
                return False
            states = (hx,)
        elif type(hx) is tuple and len(hx) == self._state_count:
            states = hx
        else:
            return False
        expected = (input.shape[0], self.hidden_size)
        for s in states:
            if not isinstance(s, Tensor) or s.shape != expected or s.dtype != dtype:
                return False
        return True

    def _parameter(self, name: str):
        """self.<name>, read from the parameter table where it is there: a cell called in a
        loop reads its four weights every step, and nn.Module's attribute lookup costs more
        than the check it serves. A parametrization or weight norm, which replaces the
        parameter by a computed tensor, takes it out of the table: then the attribute."""
        parameter = self._parameters.get(name)
        return parameter if parameter is not None else getattr(self, name)

    def _run(self, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """One step on checked (B, I) input: the registered C++ step (the same equations,
        kernels/cell_steps.cpp) where it serves the call, else the cell's own step."""
        registered = self._registered
        compiled = cell_steps(x) if registered is not None else None
        if compiled is not None:
            return registered.cpp_step(compiled, x, state, self._weights())
        return self._step(x, state)

    def _step(self, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """The cell's own step on (B, I): the definition, under autograd."""
        extra = {name: getattr(self, name) for name in self._names
                 if name not in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}  # fmt: skip
        w_hh = getattr(self, "weight_hh", None)
        hh = None if w_hh is None else F.linear(state[0], w_hh, self.bias_hh)
        new_state, _ = self.cell.run_step(self._input_projection(x), hh, state, Parameters(extra))
        return new_state

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
        is_batched = input.dim() == 2
        return (input if is_batched else input.unsqueeze(0)), is_batched

    def _check_dtype(self, input: Tensor) -> None:
        if input.dtype != self.weight_ih.dtype:
            raise InputShapeError(
                f"{type(self).__name__}: input dtype ({input.dtype}) does not match weight dtype "
                f"({self.weight_ih.dtype}). Convert input: input.to({self.weight_ih.dtype}), "
                f"or convert model: model.to({input.dtype})"
            )

    def _batched_state(
        self, state: Tensor | None, index: int, input: Tensor, is_batched: bool
    ) -> Tensor:
        """Check state number ``index`` (h: 0, the LSTM's c: 1) against the (batched) input;
        zeros when it is None. Messages start with torch.nn's text for the same problem."""
        batch = input.size(0)
        if state is None:
            return input.new_zeros(batch, self.hidden_size)
        name = type(self).__name__
        several = len(self.cell.states) > 1
        what = f"hx[{index}]" if several else "hx"
        if not isinstance(state, Tensor):
            raise TypeError(f"{name}: {what} must be a Tensor, got {type(state).__name__}")
        expected = (batch, self.hidden_size) if is_batched else (self.hidden_size,)
        fix = f"({name}: {what} must have shape {expected} for this input)"
        if state.dim() not in (1, 2):
            held = f"hx[{index}]" if several else "hidden"
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
        parameter = self._parameter
        return (parameter("weight_ih"), parameter("weight_hh"), parameter("bias_ih"),
                parameter("bias_hh"))  # fmt: skip

    def _input_projection(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight_ih, self.bias_ih)  # (B, G·H)


class RNNCell(RecurrentCell):
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
        super().__init__(ElmanRNN(nonlinearity), input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return super().forward(input, hx)


class LSTMCell(RecurrentCell):
    """An LSTM cell, gate order i, f, g, o (see :class:`rnnkit.cells.lstm.LSTM`).

    Args: input_size, hidden_size, bias=True, device, dtype.
    Input: x (B, I) or (I,), hx = (h, c) each (B, H) or (H,), or None (zeros).
    Output: (h', c'), each (B, H) or (H,).
    Parameters: weight_ih (4H, I), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,).
    """

    kind = "LSTM"

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__(LSTMDefinition(), input_size, hidden_size, bias, device, dtype)

    def forward(
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(
                "LSTMCell: hx must be a tuple (h_0, c_0) of the hidden and cell states, got "
                f"{type(hx).__name__}"
            )
        return super().forward(input, hx)


class GRUCell(RecurrentCell):
    """A GRU cell, gate order r, z, n (see :class:`rnnkit.cells.gru.GRU`).

    Args: input_size, hidden_size, bias=True, device, dtype.
    Input: x (B, I) or (I,), h (B, H) or (H,) or None (zeros). Output: h' (B, H) or (H,).
    Parameters: weight_ih (3H, I), weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,).
    """

    kind = "GRU"

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__(GRUDefinition(), input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return super().forward(input, hx)


TORCH_CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}
"""The torch.nn-named one-step class of each built-in cell."""


def make_cell(cell: Cell | str, input_size: int, hidden_size: int, **kwargs) -> RecurrentCell:
    """One step of ``cell`` (a definition, a name or ``file.py:Class``): RNNCell, LSTMCell or
    GRUCell for the three built-in names, else ``RecurrentCell``."""
    if isinstance(cell, str) and cell in TORCH_CELLS:
        return TORCH_CELLS[cell](input_size, hidden_size, **kwargs)
    return RecurrentCell(cell, input_size, hidden_size, **kwargs)
