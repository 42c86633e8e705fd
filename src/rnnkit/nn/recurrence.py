"""The time loop: the cells' equations run over a whole (packed) batch, layer by layer.

Every input form is brought to one layout before the loop, the packed layout of
``torch.nn.utils.rnn.PackedSequence``: the steps of all sequences, time-major, with the batch at
step t holding only the sequences that are still running (sorted longest first)::

    sequences (sorted)   a0 a1 a2 a3          data (N, F), N = sum(batch_sizes)
                         b0 b1 b2       ->    [a0 b0 c0 | a1 b1 c1 | a2 b2 | a3]
                         c0 c1                batch_sizes = [3, 3, 2, 1]

A padded batch (T, B, F) is the special case batch_sizes = [B] * T, so the padded and packed
paths are the same code, and no step is ever computed for padding.
"""

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.engine.dispatch import cell_steps
from rnnkit.engine.gru import gru_sequence
from rnnkit.engine.lstm import lstm_sequence
from rnnkit.engine.rnn import rnn_sequence
from rnnkit.nn.equations import GATE_NAMES, gru_step, lstm_step, rnn_step

State = tuple[Tensor, ...]  # (h,) for RNN and GRU, (h, c) for LSTM


@dataclass
class DirectionWeights:
    """The parameters of one layer in one direction, as torch.nn names them (without suffix)."""

    w_ih: Tensor  # (G·H, I)
    w_hh: Tensor  # (G·H, P)
    b_ih: Tensor | None  # (G·H,)
    b_hh: Tensor | None  # (G·H,)
    w_hr: Tensor | None  # (P, H), LSTM with proj_size > 0 only


@dataclass
class StepRecord:
    """What one layer and direction computed, one entry per time step (in time order)."""

    hidden: list[Tensor | None]
    cell: list[Tensor | None]
    gates: dict[str, list[Tensor | None]] = field(default_factory=dict)

    @classmethod
    def empty(cls, kind: str, steps: int) -> "StepRecord":
        gates: dict[str, list[Tensor | None]] = {name: [None] * steps for name in GATE_NAMES[kind]}
        return cls(hidden=[None] * steps, cell=[None] * steps, gates=gates)


def cell_step(kind: str, nonlinearity: str, weights: DirectionWeights):
    """The step function of one layer and direction: (x_proj_t, state) -> (state, gates)."""
    w_hh, b_hh = weights.w_hh, weights.b_hh
    if kind == "LSTM":

        def step(x_proj: Tensor, state: State) -> tuple[State, tuple[Tensor, ...]]:
            h, c, gates = lstm_step(x_proj, state[0], state[1], w_hh, b_hh, weights.w_hr)
            return (h, c), gates

    elif kind == "GRU":

        def step(x_proj: Tensor, state: State) -> tuple[State, tuple[Tensor, ...]]:
            h, gates = gru_step(x_proj, state[0], w_hh, b_hh)
            return (h,), gates

    else:

        def step(x_proj: Tensor, state: State) -> tuple[State, tuple[Tensor, ...]]:
            return (rnn_step(x_proj, state[0], w_hh, b_hh, nonlinearity),), ()

    return step


def compiled_direction(
    compiled,
    kind: str,
    nonlinearity: str,
    weights: DirectionWeights,
    x_proj: Tensor,
    batch_sizes: list[int],
    initial_state: State,
    reverse: bool,
) -> tuple[Tensor, State]:
    """run_direction's loop as one C++ call (packed_direction in engine/kernels/cell_steps.cpp):
    the same steps and slicing, which autograd records, without a Python iteration per step."""
    # CellKind in engine/kernels/loops.h: 0 RNN tanh, 1 RNN relu, 2 LSTM, 3 GRU
    code = {"LSTM": 2, "GRU": 3}.get(kind, 1 if nonlinearity == "relu" else 0)
    cell = initial_state[1] if kind == "LSTM" else None
    output, *final = compiled.packed_direction(
        code, x_proj, batch_sizes, initial_state[0], cell,
        weights.w_hh, weights.b_hh, weights.w_hr, reverse,
    )  # fmt: skip
    return output, tuple(final)


def run_direction(
    step,
    x_proj: Tensor,
    batch_sizes: list[int],
    initial_state: State,
    reverse: bool,
    record: StepRecord | None = None,
    probe: Tensor | None = None,
) -> tuple[Tensor, State]:
    """Run one direction of one layer over a packed batch.

    x_proj: (N, G·H) the input projection of every step; initial_state: each (B, ·).
    probe: (T, B, P) or None, added to every h_t (see Trace.hidden_probe).
    Returns the outputs h_t in packed layout (N, P) and the final state, each (B, ·): for the
    forward direction a sequence's final state is the one after its own last step.
    """
    steps = len(batch_sizes)
    # One split, not a slice per step: the backward of a split is one concatenation, while
    # each slice's backward would add into a zero tensor as large as all of x_proj.
    x_steps = x_proj.split(batch_sizes)  # T tensors (b_t, G·H)
    outputs: list[Tensor | None] = [None] * steps
    ended: list[State] = []  # final states of sequences that stopped, latest-stopping last
    if reverse:
        # Backwards in time only the longest sequences are running at first; the others join
        # (from their initial state) at their own last step.
        state = tuple(s[: batch_sizes[-1]] for s in initial_state)
        order = range(steps - 1, -1, -1)
    else:
        state = initial_state
        order = range(steps)
    for t in order:
        size = batch_sizes[t]
        running = state[0].shape[0]
        if size < running:  # forward: sequences size.. ended at step t - 1
            ended.append(tuple(s[size:] for s in state))
            state = tuple(s[:size] for s in state)
        elif size > running:  # reverse: sequences running.. start at step t
            state = tuple(
                torch.cat([s, s0[running:size]]) for s, s0 in zip(state, initial_state, strict=True)
            )
        state, gates = step(x_steps[t], state)
        if probe is not None:
            state = (state[0] + probe[t, :size], *state[1:])
        outputs[t] = state[0]
        if record is not None:
            record.hidden[t] = state[0]
            if len(state) > 1:
                record.cell[t] = state[1]
            for name, value in zip(record.gates, gates, strict=True):
                record.gates[name][t] = value
    ended.append(state)
    # ended holds row blocks from the last rows up; stacking them in reverse restores 0..B-1.
    final = tuple(torch.cat([block[k] for block in reversed(ended)]) for k in range(len(state)))
    return torch.cat(outputs), final  # type: ignore[arg-type]


def run_layers(
    kind: str,
    nonlinearity: str,
    weights: list[list[DirectionWeights]],
    data: Tensor,
    batch_sizes: list[int] | None,
    initial_state: State,
    dropout: float,
    records: list[list[StepRecord]] | None = None,
    probe: Tensor | None = None,
    engine: str = "reference",
    steps: int | None = None,
) -> tuple[Tensor, State]:
    """Run the stack of layers, each direction of each layer over the whole sequence.

    engine: "reference" (the equations under autograd) or "bptt" (the hand-written BPTT of
    :mod:`rnnkit.engine`; engine/dispatch.py chooses it only where it applies: no
    projection, all sequences of one length, nothing recorded).

    weights[l][d]: layer l, direction d. data: (N, I) packed; for the bptt engine also
    (T, B, I) time-major with batch_sizes None (no list of T sizes and no reshape, so
    torch.compile and torch.export keep T and B symbols), or (T·B, I) with ``steps`` = T.
    initial_state: each (L·D, B, ·),
    indexed l·D + d as in torch.nn. dropout: applied to each layer's output but the last (the
    caller passes 0 outside training). probe: (L, D, T, B, P) or None.
    Returns the last layer's output (N, D·P), or (T, B, D·P) for 3-D data, and the final
    states, each (L·D, B, ·).
    """
    num_layers, num_directions = len(weights), len(weights[0])
    # Where nothing is recorded, each direction's loop is one C++ call (dispatch.cell_steps).
    compiled = cell_steps(data) if records is None and engine != "bptt" else None
    layer_input = data
    finals: list[list[Tensor]] = [[] for _ in initial_state]
    for layer in range(num_layers):
        outputs = []
        for direction in range(num_directions):
            w = weights[layer][direction]
            index = layer * num_directions + direction
            if engine == "bptt":
                x = layer_input  # (T, B, F), or (T·B, F) to be viewed so
                if x.dim() == 2:
                    x = x.view(steps, initial_state[0].shape[1], x.shape[-1])
                output, final = bptt_direction(
                    kind,
                    nonlinearity,
                    x,
                    tuple(s[index] for s in initial_state),
                    w,
                    reverse=direction == 1,
                )
                if layer_input.dim() == 2:
                    output = output.flatten(0, 1)  # (T·B, H)
            else:
                # The input does not depend on the recurrence: project every step at once.
                x_proj = F.linear(layer_input, w.w_ih, w.b_ih)  # (N, G·H)
                initial = tuple(s[index] for s in initial_state)
                if compiled is not None and probe is None:
                    output, final = compiled_direction(
                        compiled, kind, nonlinearity, w, x_proj, batch_sizes, initial,
                        reverse=direction == 1,
                    )  # fmt: skip
                else:
                    output, final = run_direction(
                        cell_step(kind, nonlinearity, w),
                        x_proj,
                        batch_sizes,
                        initial,
                        reverse=direction == 1,
                        record=None if records is None else records[layer][direction],
                        probe=None if probe is None else probe[layer, direction],
                    )
            outputs.append(output)
            for k, s in enumerate(final):
                finals[k].append(s)
        layer_input = torch.cat(outputs, dim=-1) if num_directions == 2 else outputs[0]
        if dropout > 0 and layer < num_layers - 1:
            # Same call, shape and order as torch.nn's CPU kernel: the same seed gives the
            # same dropout mask as torch.nn.LSTM.
            layer_input = F.dropout(layer_input, dropout, training=True)
    return layer_input, tuple(torch.stack(f) for f in finals)


def bptt_direction(
    kind: str,
    nonlinearity: str,
    x: Tensor,
    initial_state: State,
    weights: DirectionWeights,
    reverse: bool,
) -> tuple[Tensor, State]:
    """One direction through the hand-written BPTT of rnnkit.engine; (T, B, I) -> (T, B, H).

    The biases that enter every gate the same way are added to the input projection once: both
    for the LSTM and the RNN, b_ih for the GRU (its b_hn sits inside r ⊙ (W_hn h + b_hn)).
    """
    bias = weights.b_ih
    if kind != "GRU" and bias is not None and weights.b_hh is not None:
        bias = bias + weights.b_hh
    if kind == "LSTM":
        output, h, c = lstm_sequence(x, weights.w_ih, bias, *initial_state, weights.w_hh, reverse)
        final: State = (h, c)
    elif kind == "GRU":
        output, h = gru_sequence(
            x, weights.w_ih, bias, initial_state[0], weights.w_hh, weights.b_hh, reverse
        )
        final = (h,)
    else:
        relu = nonlinearity == "relu"
        output, h = rnn_sequence(
            x, weights.w_ih, bias, initial_state[0], weights.w_hh, relu, reverse
        )
        final = (h,)
    return output, final
