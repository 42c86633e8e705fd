"""The time loop of one direction of one layer: the cell's step over a whole (packed) batch.

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

from rnnkit.cells import Cell, Parameters

State = tuple[Tensor, ...]  # in the order of the cell's states: (h,), (h, c), ...


@dataclass
class DirectionWeights:
    """The parameters of one layer in one direction, as torch.nn names them (without suffix)."""

    w_ih: Tensor  # (G·H, I)
    w_hh: Tensor | None  # (G_h·H, P); None for a cell with no hidden matrix
    b_ih: Tensor | None  # (G·H,)
    b_hh: Tensor | None  # (G_h·H,)
    extra: dict[str, Tensor] = field(default_factory=dict)  # the cell's own parameters

    @property
    def w_hr(self) -> Tensor | None:
        """(P, H), the LSTM's projection when proj_size > 0."""
        return self.extra.get("weight_hr")


@dataclass
class StepRecord:
    """What one layer and direction computed, one entry per time step (in time order):
    h_t, the other states (the LSTM's c_t) and the gates the step returned, by name."""

    hidden: list[Tensor | None]
    states: dict[str, list[Tensor | None]] = field(default_factory=dict)
    gates: dict[str, list[Tensor | None]] = field(default_factory=dict)

    @classmethod
    def empty(cls, cell: Cell, steps: int) -> "StepRecord":
        states: dict[str, list[Tensor | None]] = {name: [None] * steps for name in cell.states[1:]}
        return cls(hidden=[None] * steps, states=states)

    def keep(self, t: int, steps: int, state: State, gates: dict[str, Tensor]) -> None:
        self.hidden[t] = state[0]
        for name, value in zip(self.states, state[1:], strict=True):
            self.states[name][t] = value
        for name, value in gates.items():
            self.gates.setdefault(name, [None] * steps)[t] = value


def cell_step(cell: Cell, weights: DirectionWeights):
    """The step function of one layer and direction: (x_proj_t, state) -> (state, gates)."""
    w_hh, b_hh, params = weights.w_hh, weights.b_hh, Parameters(weights.extra)

    def step(x_proj: Tensor, state: State) -> tuple[State, dict[str, Tensor]]:
        hh = None if w_hh is None else F.linear(state[0], w_hh, b_hh)  # (B, G_h·H)
        return cell.run_step(x_proj, hh, state, params)

    return step


def compiled_direction(
    compiled,
    code: int,
    weights: DirectionWeights,
    x_proj: Tensor,
    batch_sizes: list[int],
    initial_state: State,
    reverse: bool,
) -> tuple[Tensor, State]:
    """run_direction's loop as one C++ call (packed_direction in engine/kernels/cell_steps.cpp)
    for a cell with registered C++ steps (``code``, its CellKind in engine/kernels/loops.h):
    the same steps and slicing, which autograd records, without a Python iteration per step."""
    cell = initial_state[1] if len(initial_state) > 1 else None
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
            record.keep(t, steps, state, gates)
    ended.append(state)
    # ended holds row blocks from the last rows up; stacking them in reverse restores 0..B-1.
    final = tuple(torch.cat([block[k] for block in reversed(ended)]) for k in range(len(state)))
    return torch.cat(outputs), final  # type: ignore[arg-type]
