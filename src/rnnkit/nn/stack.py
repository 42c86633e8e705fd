"""A layer's stack (layers × directions) run on the engine engine/dispatch.py chose.

nn/layers.py checks the input, picks the engine and brings the result back to the caller's
form; this file runs the stack in between:
- ``fused``: torch's kernel takes every layer in one call (engine/fused.py);
- ``bptt`` and ``reference``: nn/recurrence.py runs each layer and direction;
- with variational dropout in training, one layer at a time, each output multiplied by one
  mask per sequence before it enters the next layer (nn/dropout.py).
"""

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from rnnkit.engine.fused import fused_rnn
from rnnkit.engine.registered import fast_paths
from rnnkit.nn.dropout import mask_packed_rows, sequence_mask
from rnnkit.nn.recurrence import StepRecord, run_layers


@dataclass
class StackCall:
    """One call of a layer's stack, as the chosen engine runs it."""

    engine: str  # "fused", "bptt" or "reference"
    weights: dict[str, Tensor]  # by torch.nn's names, as this call uses them (weight drop)
    batch_sizes: list[int] | None  # sequences running at each step; None: bptt on (T, B, I)
    initial_state: tuple[Tensor, ...]  # each (L·D, B, ·), rows in the data's order
    steps: int  # T
    records: list[list[StepRecord]] | None = None  # per layer and direction, when tracing
    probe: Tensor | None = None  # (L, D, T, B, P), when probing gradients


def run_stack(layer, call: StackCall, data: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
    """data (N, I) packed, or (T, B, I) for the bptt engine -> the last layer's output in the
    same layout and the final states, each (L·D, B, ·)."""
    if layer.variational_dropout and layer.training and layer.dropout > 0:
        return run_with_variational_dropout(layer, call, data)
    return run_layer_range(layer, call, range(layer.num_layers), data)


def run_fused(layer, weights, data, batch_sizes, initial_state, layers=None):
    """torch's kernel on time-major data (T, B, I) or packed data (N, I) with its batch_sizes
    tensor; ``layers`` (a range) runs only those layers, from their slice of the state."""
    layers = range(layer.num_layers) if layers is None else layers
    D = layer.num_directions
    rows = slice(layers.start * D, layers.stop * D)  # their rows of the state (L·D, B, ·)
    flat = [weights[name] for names in layer._all_weights[rows] for name in names]
    return fused_rnn(
        fast_paths(layer.cell).torch_mode,
        flat,  # in torch.nn's flat order
        layer.bias,
        data,
        batch_sizes,
        tuple(s[rows] for s in initial_state),
        len(layers),
        layer.dropout,
        layer.training,
        layer.bidirectional,
    )


def run_layer_range(layer, call: StackCall, layers: range, data: Tensor):
    """The consecutive ``layers`` from their slice of the initial state, with torch.nn's
    dropout between them (a new mask every step). Returns the last one's output and their
    final states, each (len·D, B, ·)."""
    if call.engine == "fused":  # one layer at a time (variational dropout): equal lengths
        sizes = call.batch_sizes
        x = data.view(len(sizes), sizes[0], data.shape[-1])  # (T, B, I)
        output, final = run_fused(layer, call.weights, x, None, call.initial_state, layers)
        return output.reshape(data.shape[0], output.shape[-1]), final
    D = layer.num_directions
    rows = slice(layers.start * D, layers.stop * D)  # their rows of the state (L·D, B, ·)
    return run_layers(
        layer.cell,
        layer._direction_weights(call.weights)[layers.start : layers.stop],
        data,
        call.batch_sizes,
        tuple(s[rows] for s in call.initial_state),
        dropout=layer.dropout if layer.training else 0.0,
        records=None if call.records is None else call.records[layers.start : layers.stop],
        probe=None if call.probe is None else call.probe[layers.start : layers.stop],
        engine=call.engine,
        steps=call.steps,
    )


def run_with_variational_dropout(layer, call: StackCall, data: Tensor):
    """The layers one at a time: each layer's output h^l (N, D·P) is multiplied by one mask
    per sequence, m / (1 − p) of shape (B, D·P), the same at every step, before it enters
    layer l + 1."""
    sizes = call.batch_sizes
    if call.engine == "fused" and sizes[0] != sizes[-1]:
        call = replace(call, engine="reference")  # several lengths
    finals = []
    layer_input = data
    for index in range(layer.num_layers):
        layer_input, final = run_layer_range(layer, call, range(index, index + 1), layer_input)
        finals.append(final)
        if index < layer.num_layers - 1:
            mask = sequence_mask(sizes[0], layer_input.shape[-1], layer.dropout, data)
            layer_input = mask_packed_rows(layer_input, mask, sizes)
    return layer_input, tuple(torch.cat(parts) for parts in zip(*finals, strict=True))
