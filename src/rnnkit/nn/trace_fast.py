"""Tracing without autograd: every step's internals from each layer's outputs, recomputed in
bulk.

Once h_t is known for every step of a layer, its gates need no loop: every pre-activation
depends only on x_t and h_{t-1}, both known, so all steps are one matrix product each. When
nothing will be differentiated (no grad mode, or nothing requires a gradient) and the call is
plain (equal lengths, no projection, no dropout running), ``layer.trace`` therefore runs each
layer with torch's fused kernel (engine/fused.py: [torch's kernel], the fastest forward on the
CPU) and
recomputes, per layer and direction, with the cell's own step applied to all steps at once
(rows T·B):

    h_prev = h_{t-1} in the direction's reading order (h_0 first)
    gates  = the step's gates from W_ih x_t + b_ih and W_hh h_prev + b_hh, all steps at once
    LSTM   its step per time step for c_t (torch's kernel returns only h_t): no product in
           the loop, both sides of every step are known

This is a fast path of the three registered cells only (engine/registered.py); every other
cell records through its step in nn/recurrence.py.

The same numbers as the reference's per-step record up to round-off (tests hold them to
1e-12 in float64), and faster (bench/explore_speed.py measures both). Any other call records
through the reference (nn/recurrence.py), which also serves ``probe_gradients``.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells import Parameters
from rnnkit.nn.runner import Stack, fused_layers


@torch.no_grad()
def trace_fast(stack: Stack, data: Tensor, initial_state: tuple[Tensor, ...]):
    """data (T, B, I) time-major, initial_state each (L·D, B, H) ->
    (output (T, B, D·H), final states each (L·D, B, H), the Trace's records: hidden,
    cell (or None) and gates, each (L, D, T, B, H))."""
    cell, D = stack.cell, stack.num_directions
    H = initial_state[0].shape[-1]
    carries_cell = len(cell.states) > 1  # the LSTM's c
    hidden, cells, gates = [], [], {}
    finals: list[list[Tensor]] = [[] for _ in initial_state]
    layer_input = data
    for index, per_direction in enumerate(stack.directions):
        rows = slice(index * D, (index + 1) * D)
        one_layer = stack.layers(range(index, index + 1))
        output, final = fused_layers(one_layer, layer_input, tuple(s[rows] for s in initial_state))
        for k, state in enumerate(final):
            finals[k].append(state)
        layer_hidden, layer_cells = [], []
        layer_gates: dict[str, list[Tensor]] = {}
        for direction, w in enumerate(per_direction):
            h = output[..., direction * H : (direction + 1) * H]  # (T, B, H), time order
            h0 = initial_state[0][index * D + direction][None]  # (1, B, H)
            reverse = direction == 1
            h_prev = torch.cat([h[1:], h0]) if reverse else torch.cat([h0, h[:-1]])
            from_input = F.linear(layer_input, w.w_ih, w.b_ih)  # (T, B, G·H)
            from_state = F.linear(h_prev, w.w_hh, w.b_hh)
            params = Parameters(w.extra)
            if carries_cell:
                c0 = initial_state[1][index * D + direction]
                c, found = other_states(cell, from_input, from_state, h_prev, c0, params, reverse)
                layer_cells.append(c)
            else:
                _, found = cell.run_step(from_input, from_state, (h_prev,), params)
            layer_hidden.append(h)
            for name, values in found.items():
                layer_gates.setdefault(name, []).append(values)
        layer_input = output
        hidden.append(torch.stack(layer_hidden))
        if carries_cell:
            cells.append(torch.stack(layer_cells))
        for name, per_layer in layer_gates.items():
            gates.setdefault(name, []).append(torch.stack(per_layer))
    records = {
        "hidden": torch.stack(hidden),
        "cell": torch.stack(cells) if carries_cell else None,
        "gates": {name: torch.stack(per_layer) for name, per_layer in gates.items()},
    }
    return layer_input, tuple(torch.cat(f) for f in finals), records


def other_states(cell, from_input, from_state, h_prev, c0, params, reverse):
    """The LSTM's c_t for every step (T, B, H) and the gates, by the cell's own step in reading
    order: torch's kernel returns only h_t, and c_t is a recurrence; with h_{t-1} known the
    step needs no product (both sides are given)."""
    steps = range(h_prev.shape[0] - 1, -1, -1) if reverse else range(h_prev.shape[0])
    cells: list[Tensor | None] = [None] * h_prev.shape[0]
    found: dict[str, list[Tensor | None]] = {}
    c = c0
    for t in steps:
        (_, c), gates = cell.run_step(from_input[t], from_state[t], (h_prev[t], c), params)
        cells[t] = c
        for name, value in gates.items():
            found.setdefault(name, [None] * len(cells))[t] = value
    return torch.stack(cells), {name: torch.stack(values) for name, values in found.items()}
