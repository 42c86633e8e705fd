"""Tracing without autograd: every step's internals straight from the engine's forward loops.

The forward loops of rnnkit.engine already compute, for the backward pass, everything a
:class:`rnnkit.nn.trace.Trace` records: the LSTM's gates after their nonlinearity, c_t and h_t,
the GRU's r, z, n and h_t, the RNN's h_t. When nothing will be differentiated (no grad mode,
or nothing requires a gradient) and the call is plain (equal lengths, no projection, no dropout
running), ``layer.trace`` takes them from there instead of recording the reference's per-step
operations: the same numbers (tests hold the two to each other) at the speed of the bptt
engine's forward, 5-10x faster at batch 1. Any other call records through the reference
(nn/recurrence.py), which also serves ``probe_gradients``.

    per layer l, direction d:   x_proj = W_ih x + bias          (all steps: one product)
                                loop over t (C++ where it built, else engine/*.py in Python)
    between layers:             the outputs of both directions, concatenated
"""

import torch
from torch import Tensor

from rnnkit.engine import compiled, gru, input_projection, lstm, rnn, time_order
from rnnkit.engine.dispatch import compiling, transforming
from rnnkit.nn.equations import GATE_NAMES

PYTHON_LOOPS = {"LSTM": lstm, "GRU": gru, "RNN": rnn}


def traces_with_loops(layer, data: Tensor, initial_state: tuple[Tensor, ...]) -> bool:
    """True when the loops give this call's trace: nothing will be differentiated, equal
    lengths (the caller has checked the input is not packed), no projection, no dropout
    running, a floating dtype the loops take, and no compiler or transform watching."""
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
def trace_with_loops(layer, data: Tensor, initial_state: tuple[Tensor, ...]):
    """data (T, B, I) time-major, initial_state each (L·D, B, H) ->
    (output (T, B, D·H), final states each (L·D, B, H), the Trace's records: hidden,
    cell (or None) and gates, each (L, D, T, B, H))."""
    kind = layer.kind
    loops = compiled.loops_for(data, PYTHON_LOOPS[kind])
    D = layer.num_directions
    hidden, cells, gates = [], [], {name: [] for name in GATE_NAMES[kind]}
    finals: list[list[Tensor]] = [[] for _ in initial_state]
    layer_input = data
    for index, per_direction in enumerate(layer._direction_weights()):
        outputs = []
        layer_hidden, layer_cells = [], []
        layer_gates: dict[str, list[Tensor]] = {name: [] for name in gates}
        for direction, w in enumerate(per_direction):
            reverse = direction == 1
            state = [s[index * D + direction].contiguous() for s in initial_state]
            bias = w.b_ih
            if kind != "GRU" and bias is not None and w.b_hh is not None:
                bias = bias + w.b_hh  # enters every gate the same way (see engine/*.py)
            x_proj = input_projection(layer_input, w.w_ih, bias, reverse).contiguous()
            w_hh = w.w_hh.contiguous()
            if kind == "LSTM":
                activations, c, _, h, _ = loops.lstm_forward(x_proj, *state, w_hh, True)
                layer_cells.append(time_order(c, reverse))
                finals[1].append(c[-1])
            elif kind == "GRU":
                b_hh = w.b_hh if w.b_hh is not None else w_hh.new_zeros(w_hh.shape[0])
                activations, _, h = loops.gru_forward(x_proj, state[0], w_hh, b_hh, True)
            else:
                (h,) = loops.rnn_forward(x_proj, state[0], w_hh, layer.nonlinearity == "relu")
                activations = None
            finals[0].append(h[-1])
            h = time_order(h, reverse)
            outputs.append(h)
            layer_hidden.append(h)
            if activations is not None:
                chunks = time_order(activations, reverse).chunk(len(gates), dim=-1)
                for name, chunk in zip(gates, chunks, strict=True):
                    layer_gates[name].append(chunk)
        layer_input = torch.cat(outputs, dim=-1) if D == 2 else outputs[0]
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
    return layer_input, tuple(torch.stack(f) for f in finals), records
