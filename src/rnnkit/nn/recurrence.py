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
from rnnkit.engine.dispatch import only_backward_mode

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
        only_backward_mode(weights.w_hh, weights.b_hh),
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


def scan_direction(
    cell: Cell,
    weights: DirectionWeights,
    x_proj: Tensor,
    initial_state: State,
    reverse: bool,
    parallel: bool,
    batch_sizes: list[int] | None = None,
) -> tuple[Tensor, State]:
    """One direction of a linear cell (cells/linear.py), h_t = a_t ⊙ h_{t-1} + b_t, by a scan.

    x_proj: (T, B, G·H) for equal lengths, or the packed (N, G·H) with its ``batch_sizes``;
    the output comes back in the same layout, with the final state (h_T,) as run_direction's.
    The coefficients of every step come from one call of the cell's ``coefficients``; a packed
    batch is laid out time-major (each sequence reversed in its own length for the reverse
    direction) with a = 1, b = 0 after a sequence's end, which carries its final state to T.
    """
    from rnnkit.engine.scan import linear_scan, parallel_scan

    a, b, _ = cell.coefficients(x_proj, Parameters(weights.extra))
    if batch_sizes is not None:
        place, rows = _time_major(batch_sizes, reverse, a.device)
        a = torch.cat([a, a.new_ones(1, a.shape[-1])])[place]  # (T, B, H); padding a = 1, b = 0
        b = torch.cat([b, b.new_zeros(1, b.shape[-1])])[place]
    elif reverse:
        a, b = a.flip(0), b.flip(0)
    h0 = initial_state[0]
    if parallel:  # float64 sums for float32 input: round-off as the sequential loop's
        accumulate = torch.float64 if b.dtype != torch.float64 else None
        h = parallel_scan(a, b, h0, accumulate)
    else:
        h = linear_scan(a, b, h0)
    final = (h[-1],)
    if batch_sizes is not None:
        return h.flatten(0, 1)[rows], final
    return (h.flip(0) if reverse else h), final


def _time_major(batch_sizes: list[int], reverse: bool, device) -> tuple[Tensor, Tensor]:
    """For a packed batch of N rows: ``place`` (T, B), the packed row at each time-major
    position (N where the sequence has ended), and ``rows`` (N,), the flat time-major position
    of each packed row. Reversed, position s of sequence b is its step L_b − 1 − s."""
    sizes = torch.tensor(batch_sizes, device=device)
    steps, batch = len(batch_sizes), batch_sizes[0]
    columns = torch.arange(batch, device=device)
    running = columns < sizes[:, None]  # (T, B): sequence b is at step t
    packed_row = sizes.cumsum(0)[:, None] - sizes[:, None] + columns  # (T, B)
    total = sum(batch_sizes)
    if not reverse:
        place = torch.where(running, packed_row, total)
        rows = running.flatten().nonzero().squeeze(1)
        return place, rows
    lengths = running.sum(0)  # (B,)
    step_of = lengths - 1 - torch.arange(steps, device=device)[:, None]  # (T, B): L_b − 1 − s
    place = torch.where(step_of >= 0, packed_row.gather(0, step_of.clamp(min=0)), total)
    t, column = running.nonzero(as_tuple=True)  # the packed rows in order
    rows = (lengths[column] - 1 - t) * batch + column
    return place, rows
