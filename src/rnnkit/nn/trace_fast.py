"""Tracing without autograd: every step's internals from each layer's outputs, recomputed in
bulk.

Once h_t is known for every step of a layer, its gates need no loop: every pre-activation
depends only on x_t and h_{t-1}, both known, so all steps are one matrix product each. When
nothing will be differentiated (no grad mode, or nothing requires a gradient) and the call is
plain (equal lengths, no projection, no dropout running), ``layer.trace`` therefore runs each
layer with torch's fused kernel (engine/fused.py: [torch's kernel], the fastest forward on the
CPU: 0.25 s against 0.68 s for rnnkit's own loops, 5,000 steps of 1×512 at batch 1) and
recomputes, per layer and direction:

    h_prev = h_{t-1} in the direction's reading order (h_0 first)
    LSTM   a = W_ih x_t + b_ih + W_hh h_prev + b_hh;  i, f, o = σ(a_i, a_f, a_o), g = tanh(a_g)
           c_t = f ⊙ c_{t-1} + i ⊙ g     (the only loop: elementwise, in reading order)
    GRU    r = σ(W_ir x + b_ir + W_hr h_prev + b_hr),  z likewise,
           n = tanh(W_in x + b_in + r ⊙ (W_hn h_prev + b_hn))
    RNN    h_t is all there is

The same numbers as the reference's per-step record up to round-off (tests hold them to
1e-12 in float64), 3-4x faster: 0.36-0.47 s against 1.05-1.66 s for 5,000 characters of a
1×512 LSTM (bench/explore_speed.py's last row). Any other call records
through the reference (nn/recurrence.py), which also serves ``probe_gradients``.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.engine.dispatch import compiling, transforming
from rnnkit.nn.equations import GATE_NAMES
from rnnkit.nn.stack import run_fused


def traces_fast(layer, data: Tensor, initial_state: tuple[Tensor, ...]) -> bool:
    """True when this call's trace can be recomputed from the outputs: nothing will be
    differentiated, equal lengths (the caller has checked the input is not packed), no
    projection, no dropout running, a floating dtype, and no compiler or transform watching."""
    tensors = [data, *initial_state, *layer.parameters()]
    needs_gradients = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    dropout_running = layer.training and (layer.dropout > 0 or layer.weight_dropout > 0)
    return (
        not needs_gradients
        and not dropout_running
        and layer.proj_size == 0
        and data.shape[0] > 0
        and data.dtype in (torch.float32, torch.float64)
        and not compiling()
        and not transforming()
    )


@torch.no_grad()
def trace_fast(layer, data: Tensor, initial_state: tuple[Tensor, ...]):
    """data (T, B, I) time-major, initial_state each (L·D, B, H) ->
    (output (T, B, D·H), final states each (L·D, B, H), the Trace's records: hidden,
    cell (or None) and gates, each (L, D, T, B, H))."""
    kind, D, H = layer.kind, layer.num_directions, layer.hidden_size
    weights = {name: getattr(layer, name) for name in layer._flat_weights_names}
    hidden, cells, gates = [], [], {name: [] for name in GATE_NAMES[kind]}
    finals: list[list[Tensor]] = [[] for _ in initial_state]
    layer_input = data
    for index, per_direction in enumerate(layer._direction_weights()):
        output, final = run_fused(
            layer, weights, layer_input, None, initial_state, range(index, index + 1)
        )
        for k, state in enumerate(final):
            finals[k].append(state)
        layer_hidden, layer_cells = [], []
        layer_gates: dict[str, list[Tensor]] = {name: [] for name in gates}
        for direction, w in enumerate(per_direction):
            h = output[..., direction * H : (direction + 1) * H]  # (T, B, H), time order
            h0 = initial_state[0][index * D + direction][None]  # (1, B, H)
            reverse = direction == 1
            h_prev = torch.cat([h[1:], h0]) if reverse else torch.cat([h0, h[:-1]])
            from_input = F.linear(layer_input, w.w_ih, w.b_ih)  # (T, B, G·H)
            from_state = F.linear(h_prev, w.w_hh, w.b_hh)
            layer_hidden.append(h)
            if kind == "LSTM":
                a_i, a_f, a_g, a_o = (from_input + from_state).chunk(4, dim=-1)
                i, f, g, o = a_i.sigmoid(), a_f.sigmoid(), a_g.tanh(), a_o.sigmoid()
                c0 = initial_state[1][index * D + direction]
                layer_cells.append(cell_states(i, f, g, c0, reverse))
                found = {"i": i, "f": f, "g": g, "o": o}
            elif kind == "GRU":
                x_r, x_z, x_n = from_input.chunk(3, dim=-1)
                h_r, h_z, h_n = from_state.chunk(3, dim=-1)
                r = (x_r + h_r).sigmoid()
                found = {"r": r, "z": (x_z + h_z).sigmoid(), "n": torch.tanh(x_n + r * h_n)}
            else:
                found = {}
            for name, values in found.items():
                layer_gates[name].append(values)
        layer_input = output
        hidden.append(torch.stack(layer_hidden))
        if kind == "LSTM":
            cells.append(torch.stack(layer_cells))
        for name, per_layer in layer_gates.items():
            gates[name].append(torch.stack(per_layer))
    records = {
        "hidden": torch.stack(hidden),
        "cell": torch.stack(cells) if kind == "LSTM" else None,
        "gates": {name: torch.stack(per_layer) for name, per_layer in gates.items()},
    }
    return layer_input, tuple(torch.cat(f) for f in finals), records


def cell_states(i: Tensor, f: Tensor, g: Tensor, c0: Tensor, reverse: bool) -> Tensor:
    """c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t for every step (T, B, H), in reading order."""
    cells = i * g  # then the recurrence, one operation per step, in place
    c = c0
    steps = range(g.shape[0] - 1, -1, -1) if reverse else range(g.shape[0])
    for t in steps:
        c = cells[t].addcmul_(f[t], c)
    return cells
