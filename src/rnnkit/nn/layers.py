"""Recurrent layers of any cell, and RNN, LSTM and GRU: drop-in replacements for torch.nn's.

``Recurrent(cell, input_size, hidden_size, ...)`` runs any cell definition (rnnkit.cells: a
shipped one by name, or a user's ``Cell``) with torch.nn's interface: layers, directions,
batch_first, unbatched and packed input, initial state, dropout between layers, variational
and weight dropout, ``.trace()``. RNN, LSTM and GRU are ``Recurrent`` over the three built-in
definitions, with torch.nn's constructor signatures and messages.

Same constructor arguments, parameter names and state_dict keys (``weight_ih_l0``,
``bias_hh_l1_reverse``, ``weight_hr_l0``...), the same initialisation, input forms and outputs
as torch.nn, so a state_dict moves between the two in both directions. The recurrence is the
cells' equations (:mod:`rnnkit.nn.equations`) run by :mod:`rnnkit.nn.recurrence` or by an
engine (:mod:`rnnkit.engine.dispatch`); this file handles the arguments and the parameters,
:mod:`rnnkit.nn.inputs` the input forms.

Beyond torch.nn, ``layer.trace(input, hx)`` returns every step's hidden state, cell state and
gate activations (:class:`rnnkit.nn.trace.Trace`), ``layer.weight_dropout = p`` drops out the
hidden-to-hidden weights in training (see ``_weights_for_call``), and
``layer.variational_dropout = True`` makes the dropout between layers draw one mask per
sequence, the same at every step (see rnnkit.nn.stack).

Shapes (T time steps, B batch, I input_size, H hidden_size, P = proj_size or H, D = 2 if
bidirectional else 1, L num_layers):
    input   (T, B, I), or (B, T, I) with batch_first, or (T, I) unbatched, or a PackedSequence
    h_0     (L·D, B, P), or (L·D, P) unbatched; LSTM c_0 (L·D, B, H)
    output  (T, B, D·P) (same layout as the input), or a PackedSequence
    h_n     (L·D, B, P); LSTM c_n (L·D, B, H)
"""

import warnings

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from rnnkit.arguments import (
    check_bool,
    check_dropout,
    check_nonlinearity,
    check_positive_int,
    check_proj_size,
)
from rnnkit.cells import Cell, cell_from_spec, check_cell
from rnnkit.cells.definition import initialise
from rnnkit.cells.gru import GRU as GRUDefinition
from rnnkit.cells.lstm import LSTM as LSTMDefinition
from rnnkit.cells.rnn import ElmanRNN
from rnnkit.engine import dispatch
from rnnkit.engine.cell_loop import operator_for
from rnnkit.engine.dispatch import (
    Call,
    autocasting,
    cell_steps,
    check_engine,
    needs_gradient,
    runs_eagerly_under_compile,
)
from rnnkit.engine.fused import runs_under_autocast
from rnnkit.engine.registered import REGISTERED, kernel_of
from rnnkit.nn.conversion import TorchTwin
from rnnkit.nn.inputs import check_data, checked_initial_state, time_major
from rnnkit.nn.recurrence import DirectionWeights, StepRecord
from rnnkit.nn.runner import Stack, run_stack
from rnnkit.nn.trace import Trace, assemble_trace, recomputed_trace
from rnnkit.nn.trace_fast import trace_fast


class Recurrent(TorchTwin, nn.Module):
    """Layers of any cell over whole sequences, with torch.nn's interface.

    ``cell``: a definition (a ``rnnkit.cells.Cell`` subclass or instance) or the name of a
    shipped one ("layernorm_lstm", ...). The other arguments are torch.nn.LSTM's; proj_size
    only for a cell that projects (the LSTM). The state is h_0 alone for a cell with one state,
    else a tuple in the order of ``cell.states`` (the LSTM's (h_0, c_0)).
    Parameters per layer l and direction: weight_ih_l{l}, weight_hh_l{l}, bias_ih_l{l},
    bias_hh_l{l} (as the cell declares them) and the cell's own parameters, each with the same
    suffix (``_reverse`` for the reverse direction).
    """

    kind = ""  # the name in torch.nn's messages: the class name, or the cell's name
    dimension_noun = ""  # torch.nn.RNN says "got 4D tensor instead", LSTM and GRU "got 4D instead"

    def __init__(
        self,
        cell: Cell | type[Cell] | str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        engine: str = "auto",
    ) -> None:
        super().__init__()
        self.cell = cell_from_spec(cell) if isinstance(cell, str) else check_cell(cell)
        if not self.kind:
            self.kind = type(self.cell).__name__
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("num_layers", num_layers)
        check_bool("bias", bias)
        check_bool("batch_first", batch_first)
        check_bool("bidirectional", bidirectional)
        check_dropout(dropout)
        check_proj_size(proj_size, hidden_size)
        if proj_size and not self.cell.projectable:
            raise ValueError(
                f"proj_size is only supported for LSTM; the cell {self.cell.label} has no "
                "projection (leave proj_size at 0)"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=3,
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.engine = engine
        # DropConnect on every W_hh in training (0: off); a regulariser torch.nn does not have.
        self.weight_dropout = 0.0
        # Between stacked layers, one dropout mask per sequence for all its steps instead of a
        # new one at every step (rnnkit.nn.dropout); torch.nn has only the latter.
        self.variational_dropout = False
        self._register_parameters(torch.device(device) if device else None, dtype)
        self.reset_parameters()
        if kernel_of(self.cell) is None and not self.cell.linear:
            # its loop as one operator for torch.compile and torch.export (engine/cell_loop.py)
            operator_for(self.cell, tuple(self.cell.extra_parameters(proj_size)))

    @property
    def engine(self) -> str:
        """Which code runs the layer: "auto" (the default), "fused", "bptt" or "reference";
        every choice gives the same results (rnnkit.engine.dispatch says what each one is and
        what auto picks). Checked when set."""
        return self._engine

    @engine.setter
    def engine(self, value: str) -> None:
        self._engine = check_engine(value)

    # -- parameters -------------------------------------------------------------------------

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """P: the size of h_t (proj_size when projecting, else hidden_size)."""
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    def _register_parameters(self, device, dtype) -> None:
        # Registration order is torch.nn's, so reset_parameters draws the same numbers from the
        # same seed and the two modules start from identical weights.
        factory = {"device": device, "dtype": dtype}
        self._all_weights: list[list[str]] = []
        self._stems: dict[str, str] = {}  # parameter name -> its name without the suffix
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.output_size * self.num_directions
            for direction in range(self.num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = self.cell.weight_shapes(
                    layer_input, self.hidden_size, self.proj_size, self.bias
                )
                names = []
                for stem, shape in shapes.items():
                    setattr(self, stem + suffix, nn.Parameter(torch.empty(shape, **factory)))
                    names.append(stem + suffix)
                    self._stems[stem + suffix] = stem
                self._all_weights.append(names)

    def reset_parameters(self) -> None:
        """torch.nn's rule: every weight and bias uniform in [-1/sqrt(H), 1/sqrt(H)], in
        registration order; a cell's own parameter as its Weight says (LayerNorm gains: 1)."""
        for name in self._flat_weights_names:
            initialise(getattr(self, name), self.cell.init_of(self._stems[name]), self.hidden_size)

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """The parameters per layer and direction, in torch.nn's order."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    @property
    def _flat_weights_names(self) -> list[str]:
        return [name for names in self._all_weights for name in names]

    @property
    def _flat_weights(self) -> list[nn.Parameter]:
        return [getattr(self, name) for name in self._flat_weights_names]

    def flatten_parameters(self) -> None:
        """A no-op kept for torch.nn compatibility (there is no cuDNN weight buffer here)."""

    def _weights_for_call(self) -> dict[str, torch.Tensor]:
        """The parameters by name as one forward call uses them. In training with
        ``weight_dropout`` p > 0, each hidden-to-hidden matrix is dropped out once per call
        (W_hh ⊙ M / (1 − p), M ~ Bernoulli(1 − p), the same M at every step): DropConnect
        (Wan et al. 2013) on the recurrent weights, the AWD-LSTM's weight drop (Merity et al.
        2017). It regularises the recurrence without touching the cell's equations, so every
        engine, the fused kernel included, runs it unchanged."""
        weights = {name: getattr(self, name) for name in self._flat_weights_names}
        if self.training and self.weight_dropout > 0:
            for name in weights:
                if name.startswith("weight_hh"):
                    weights[name] = nn.functional.dropout(weights[name], self.weight_dropout)
        return weights

    def _direction_weights(self, weights=None) -> list[list[DirectionWeights]]:
        """Per layer and direction, from ``weights`` (name -> tensor; default: the parameters)."""
        if weights is None:
            weights = {name: getattr(self, name) for name in self._flat_weights_names}
        per_layer = []
        for layer in range(self.num_layers):
            per_direction = []
            for direction in range(self.num_directions):
                names = self._all_weights[layer * self.num_directions + direction]
                by_stem = {self._stems[name]: weights[name] for name in names}
                per_direction.append(
                    DirectionWeights(
                        w_ih=by_stem.pop("weight_ih"),
                        w_hh=by_stem.pop("weight_hh", None),
                        b_ih=by_stem.pop("bias_ih", None),
                        b_hh=by_stem.pop("bias_hh", None),
                        extra=by_stem,
                    )
                )
            per_layer.append(per_direction)
        return per_layer

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if type(self) is Recurrent:
            text = f"{self.cell!r}, {text}"
        if self.proj_size != 0:
            text += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if getattr(self.cell, "nonlinearity", "tanh") != "tanh":
            text += f", nonlinearity={self.cell.nonlinearity}"
        if self.bias is not True:
            text += f", bias={self.bias}"
        if self.batch_first is not False:
            text += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            text += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            text += f", bidirectional={self.bidirectional}"
        return text

    # -- forward ----------------------------------------------------------------------------

    def forward(self, input, hx=None):
        """Same inputs and outputs as the torch.nn module of the same name (see module doc)."""
        output, state, _ = self._run(input, hx, record=False, probe_gradients=False)
        return output, state

    @torch.compiler.disable
    def _run_eagerly(self, input, hx, record: bool, probe_gradients: bool):
        """The call as a graph break in a torch.compile'd program (engine/dispatch.py)."""
        return self._run(input, hx, record, probe_gradients)

    def trace(self, input, hx=None, *, probe_gradients: bool = False) -> Trace:
        """Run forward and return every step's internals as a :class:`rnnkit.nn.trace.Trace`.

        With ``probe_gradients=True`` the trace can also give ∂L/∂h_t for every step after a
        backward pass (``trace.hidden_grad``).
        """
        _, _, trace = self._run(input, hx, record=True, probe_gradients=probe_gradients)
        assert trace is not None
        return trace

    def _run(self, input, hx, record: bool, probe_gradients: bool):
        packed = isinstance(input, PackedSequence)
        if packed:
            data, batch_sizes, sorted_indices, unsorted_indices = input
            check_data(self, data, expected_dim=2, form="PackedSequence data")
            steps, batch = len(batch_sizes), int(batch_sizes[0])
            is_batched = True
        else:
            data, is_batched = time_major(self, input)  # (T, B, I)
            steps, batch = data.shape[0], data.shape[1]
            batch_sizes = sorted_indices = unsorted_indices = None
        initial_state = checked_initial_state(self, hx, data, batch, is_batched)
        if sorted_indices is not None:
            # The caller's h_0 rows are in the caller's order; the packed data is sorted.
            initial_state = tuple(s.index_select(1, sorted_indices) for s in initial_state)
        kernel = kernel_of(self.cell)
        call = Call(
            kernel,
            data.dtype,
            data.device,
            packed,
            self.proj_size > 0,
            recording=record or probe_gradients,
            probing=probe_gradients,
            variational=self._variational_now(),
            dropout_running=self.training and (self.dropout > 0 or self.weight_dropout > 0),
            needs_gradient=needs_gradient(data, *initial_state, *self.parameters()),
            cpp_steps=cell_steps(data) is not None,
            linear=self.cell.linear,
            torch_kernel_first=kernel is not None and REGISTERED[kernel].torch_kernel_first,
            kernel_autocasts=kernel is None
            or not autocasting(data.device)
            or runs_under_autocast(
                REGISTERED[kernel].torch_mode,
                len(self.cell.states),
                len(self.cell.gates),
                data.device,
            ),
        )
        route = dispatch.route(self.engine, call)
        if route.trace != "recomputed" and runs_eagerly_under_compile(self.engine, route):
            return self._run_eagerly(input, hx, record, probe_gradients)
        stack = self._stack()
        if route.trace == "recomputed":
            output, final, records = trace_fast(stack, data, initial_state)
            output, state = self._outputs(output, final, input, is_batched, None)
            return output, state, recomputed_trace(output, state, records, steps, batch)
        shape = (self.num_layers, self.num_directions, steps, batch, self.output_size)
        probe = data.new_zeros(shape, requires_grad=True) if probe_gradients else None
        probe_sorted = probe
        if probe is not None and sorted_indices is not None:
            probe_sorted = probe.index_select(3, sorted_indices)
        records = None
        if record:
            records = [
                [StepRecord.empty(self.cell, steps) for _ in range(self.num_directions)]
                for _ in range(self.num_layers)
            ]
        output, final = run_stack(
            route, stack, data, batch_sizes, initial_state, records, probe_sorted
        )
        output, state = self._outputs(output, final, input, is_batched, unsorted_indices)
        if records is None:
            return output, state, None
        layout = input if packed else None
        trace = assemble_trace(
            self.cell, output, state, records, layout, steps, batch, data.device, probe
        )
        return output, state, trace

    def _stack(self) -> Stack:
        """This call's layers with their weights, prepared once (weight dropout drawn here)."""
        weights = self._weights_for_call()
        D = self.num_directions
        flat = [
            [weights[name] for names in self._all_weights[layer * D : (layer + 1) * D]
             for name in names]
            for layer in range(self.num_layers)
        ]  # fmt: skip
        dropout = self.dropout if self.training else 0.0
        directions = self._direction_weights(weights)
        return Stack(
            self.cell, self.num_layers, D, self.bias, dropout, self.training, directions, flat
        )

    def _variational_now(self) -> bool:
        return self.variational_dropout and self.training and self.dropout > 0

    def _outputs(self, output, final, input, is_batched: bool, unsorted_indices):
        """The engine's output ((T, B, D·P) time-major or packed data (N, D·P)) and final
        states (each (L·D, B, ·), rows sorted as the packed data) in the caller's form."""
        if unsorted_indices is not None:
            final = tuple(s.index_select(1, unsorted_indices) for s in final)
        if isinstance(input, PackedSequence):
            output = PackedSequence(output, *input[1:])
        else:
            if self.batch_first:
                output = output.transpose(0, 1)  # (B, T, D·P), a view as torch.nn's
            if not is_batched:
                output = output.squeeze(0 if self.batch_first else 1)
                final = tuple(s.squeeze(1) for s in final)
        state = final if len(self.cell.states) > 1 else final[0]
        return output, state


class RNN(Recurrent):
    """Elman RNN layers, a drop-in for ``torch.nn.RNN``: h_t = tanh(W_ih x_t + b_ih +
    W_hh h_{t-1} + b_hh) (or relu). Arguments as torch.nn.RNN: input_size, hidden_size,
    num_layers=1, nonlinearity="tanh", bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, device=None, dtype=None; and rnnkit's engine="auto" (see
    rnnkit.engine.dispatch).
    """

    kind = "RNN"
    dimension_noun = " tensor"

    # torch.nn.RNN's arguments spelled out on purpose, as in LSTM and GRU: the same names,
    # order and defaults as torch.nn's, so that signatures, help() and editors show them.
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        engine: str = "auto",
        **unsupported,
    ) -> None:
        _reject_proj_size(unsupported)
        check_nonlinearity(nonlinearity)
        self.nonlinearity = nonlinearity
        super().__init__(
            ElmanRNN(nonlinearity),
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device=device,
            dtype=dtype,
            engine=engine,
        )


class LSTM(Recurrent):
    """LSTM layers, a drop-in for ``torch.nn.LSTM`` (gate order i, f, g, o; optional
    projection h_t = W_hr (o_t ⊙ tanh(c_t))). Arguments as torch.nn.LSTM: input_size,
    hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0, bidirectional=False,
    proj_size=0, device=None, dtype=None; and rnnkit's engine="auto". hx and the returned state
    are tuples (h, c).
    """

    kind = "LSTM"

    # torch.nn.LSTM's arguments spelled out on purpose (see RNN.__init__).
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        engine: str = "auto",
    ) -> None:
        super().__init__(
            LSTMDefinition(),
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device=device,
            dtype=dtype,
            engine=engine,
        )


class GRU(Recurrent):
    """GRU layers, a drop-in for ``torch.nn.GRU`` (gate order r, z, n;
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}). Arguments as torch.nn.GRU: input_size, hidden_size,
    num_layers=1, bias=True, batch_first=False, dropout=0.0, bidirectional=False, device=None,
    dtype=None; and rnnkit's engine="auto".
    """

    kind = "GRU"

    # torch.nn.GRU's arguments spelled out on purpose (see RNN.__init__).
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        engine: str = "auto",
        **unsupported,
    ) -> None:
        _reject_proj_size(unsupported)
        super().__init__(
            GRUDefinition(),
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device=device,
            dtype=dtype,
            engine=engine,
        )


def _reject_proj_size(unsupported: dict) -> None:
    if "proj_size" in unsupported:
        raise ValueError(
            "proj_size argument is only supported for LSTM, not RNN or GRU; use rnnkit.LSTM "
            "for a projected hidden state"
        )
    if unsupported:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unsupported))}")


TORCH_LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
"""The torch.nn-named layer class of each built-in cell."""


def make_layer(cell: Cell | str, input_size: int, hidden_size: int, *args, **kwargs) -> Recurrent:
    """Layers of ``cell`` (a definition, a name, or ``file.py:Class``): the torch.nn-named class
    for the three built-in names (rnnkit.RNN, LSTM, GRU), else ``Recurrent``."""
    if isinstance(cell, str) and cell in TORCH_LAYERS:
        return TORCH_LAYERS[cell](input_size, hidden_size, *args, **kwargs)
    return Recurrent(cell, input_size, hidden_size, *args, **kwargs)
