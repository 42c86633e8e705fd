"""A layer's stack, layers × directions, on the path engine/dispatch.py routed the call to.

nn/layers.py checks the input, asks ``dispatch.route`` for the path, prepares the weights once
(``Stack``) and brings the result back to the caller's form; this file runs the stack in
between, and never calls back into the layer:

    fused                 torch's kernel takes every layer in one call (engine/fused.py)
    bptt                  rnnkit's hand-written BPTT registered for the cell, per direction
    reference             the cell's step per time step (nn/recurrence.py), per direction:
                          in Python, or the registered C++ loop, or its inference loop; a
                          linear cell's recurrence by a scan (sequential or parallel)
    per layer             with variational dropout in training, one layer at a time on the
                          route's engine, each output multiplied by one mask per sequence
                          before it enters the next layer (nn/dropout.py)

Layouts: ``data`` is time-major (T, B, I) for a padded batch, or the (N, I) data of a
PackedSequence with its ``batch_sizes`` (tensor); the output comes back in the same layout.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells import Cell
from rnnkit.engine.cell_loop import cell_loop
from rnnkit.engine.derived_loop import derived_direction
from rnnkit.engine.dispatch import Route, cell_steps, only_backward_mode
from rnnkit.engine.fused import fused_rnn
from rnnkit.engine.registered import fast_paths
from rnnkit.engine.traced import traced_step
from rnnkit.nn.dropout import mask_packed_rows, sequence_mask
from rnnkit.nn.recurrence import (
    DirectionWeights,
    StepRecord,
    cell_step,
    compiled_direction,
    run_direction,
    scan_direction,
)

State = tuple[Tensor, ...]
SCANS = ("scan", "parallel_scan")  # the loops of a linear cell (cells/linear.py)
TIME_MAJOR = (*SCANS, "operator")  # loops over (T, B, ·) data, T a symbol under compile


@dataclass
class Stack:
    """One call's layers, prepared once from the layer (weight dropout already applied)."""

    cell: Cell
    num_layers: int
    num_directions: int
    bias: bool
    dropout: float  # between layers; the caller passes 0 outside training
    training: bool  # the module's mode, which torch's kernel takes as torch.nn passes it
    directions: list[list[DirectionWeights]]  # [layer][direction]
    flat: list[list[Tensor]]  # [layer]: its tensors in torch.nn's flat order (torch's kernel)

    def layers(self, which: range) -> "Stack":
        return Stack(
            self.cell, len(which), self.num_directions, self.bias, self.dropout, self.training,
            self.directions[which.start : which.stop], self.flat[which.start : which.stop],
        )  # fmt: skip


def run_stack(
    route: Route,
    stack: Stack,
    data: Tensor,
    batch_sizes: Tensor | None,
    initial_state: State,
    records: list[list[StepRecord]] | None = None,
    probe: Tensor | None = None,
) -> tuple[Tensor, State]:
    """data (T, B, I) or packed (N, I) with batch_sizes; initial_state each (L·D, B, ·);
    probe (L, D, T, B, P) or None. Returns the last layer's output in the data's layout and
    the final states, each (L·D, B, ·)."""
    if route.per_layer:
        return _one_layer_at_a_time(route, stack, data, batch_sizes, initial_state)
    if route.engine == "fused":
        return _fused(stack, data, batch_sizes, initial_state)
    if route.engine == "bptt":
        return _bptt(stack, data, initial_state)
    if route.loop in TIME_MAJOR and batch_sizes is None:
        return _time_major(route, stack, data, initial_state)
    packed_data, sizes = _as_packed(data, batch_sizes)
    output, final = _reference(route, stack, packed_data, sizes, initial_state, records, probe)
    return (output if batch_sizes is not None else output.view(*data.shape[:2], -1)), final


def _as_packed(data: Tensor, batch_sizes: Tensor | None) -> tuple[Tensor, list[int]]:
    """(N, F) and the T sizes: a padded (T, B, F) batch is the case sizes = [B] * T."""
    if batch_sizes is not None:
        return data, batch_sizes.tolist()
    steps, batch = data.shape[:2]
    return data.reshape(steps * batch, data.shape[-1]), [batch] * steps


def fused_layers(stack: Stack, data: Tensor, initial_state: State) -> tuple[Tensor, State]:
    """torch's kernel on every layer of ``stack``, data (T, B, I) (nn/trace_fast.py's first
    step)."""
    return _fused(stack, data, None, initial_state)


def _fused(stack: Stack, data, batch_sizes, initial_state) -> tuple[Tensor, State]:
    """torch's kernel on every layer of ``stack`` in one call."""
    return fused_rnn(
        fast_paths(stack.cell).torch_mode,
        [tensor for layer in stack.flat for tensor in layer],  # torch.nn's flat order
        stack.bias,
        data,
        batch_sizes,
        initial_state,
        stack.num_layers,
        stack.dropout,
        stack.training,
        stack.num_directions == 2,
    )


def _bptt(stack: Stack, data: Tensor, initial_state: State) -> tuple[Tensor, State]:
    """rnnkit's hand-written BPTT, direction by direction; data (T, B, I), equal lengths.
    Time-major as it is: no reshape and no list of T sizes, so torch.compile and torch.export
    keep T and B symbols (one graph for all lengths)."""
    return _layers(stack, data, initial_state, fast_paths(stack.cell).bptt)


def _time_major(route: Route, stack: Stack, data: Tensor, initial_state: State):
    """A linear cell's scans, or a cell's loop as one operator (under torch.compile and
    torch.export), over time-major (T, B, I) data: no list of T sizes, so the compiler and
    the exporter keep T a symbol, as for _bptt."""
    parallel = route.loop == "parallel_scan"

    def direction(layer_input, initial, weights, reverse):
        x_proj = F.linear(layer_input, weights.w_ih, weights.b_ih)  # (T, B, G·H)
        if route.loop == "operator":
            return cell_loop(stack.cell, x_proj, initial, weights.w_hh, weights.b_hh,
                             weights.extra, reverse)  # fmt: skip
        return scan_direction(stack.cell, weights, x_proj, initial, reverse, parallel)

    return _layers(stack, data, initial_state, direction)


def _reference(route, stack, data, sizes, initial_state, records, probe):
    """The cell's step per time step over a packed batch (N, I), direction by direction."""
    registered = fast_paths(stack.cell)
    compiled = cell_steps(data) if route.loop in ("cpp", "cpp_inference", "traced") else None
    loop = compiled.packed_inference if route.loop == "cpp_inference" else None

    def direction(layer_input, initial, weights, reverse, layer, index):
        # The input does not depend on the recurrence: project every step at once.
        x_proj = F.linear(layer_input, weights.w_ih, weights.b_ih)  # (N, G·H)
        if route.loop in SCANS:
            parallel = route.loop == "parallel_scan"
            return scan_direction(stack.cell, weights, x_proj, initial, reverse, parallel, sizes)
        if loop is not None:
            cell_state = initial[1] if len(initial) > 1 else None
            output, *final = loop(registered.cpp_code, x_proj, sizes, initial[0], cell_state,
                                  weights.w_hh, weights.b_hh, reverse)  # fmt: skip
            return output, tuple(final)
        if compiled is not None and route.loop == "traced":
            # An elementwise step: its derived loops (one pass a step); else the traced
            # loop, operator by operator.
            def by_the_step(x_proj, initial, w_hh, b_hh, extra):  # second order's recompute
                own = DirectionWeights(weights.w_ih, w_hh, weights.b_ih, b_hh, extra)
                output, final = run_direction(
                    cell_step(stack.cell, own), x_proj, sizes, initial, reverse
                )
                return (output, *final)

            derived = derived_direction(
                compiled, stack.cell, x_proj, sizes, initial, weights, reverse, by_the_step
            )
            if derived is not None:
                return derived
            width = None if weights.w_hh is None else weights.w_hh.shape[0]
            step = traced_step(compiled, stack.cell, x_proj, width, initial, weights.extra)
            if step is not None:  # else the step could not be traced: its own step runs
                output, *final = compiled.traced_direction(
                    step, x_proj, sizes, list(initial), weights.w_hh, weights.b_hh,
                    list(weights.extra.values()), reverse,
                    only_backward_mode(weights.w_hh, weights.b_hh),
                )  # fmt: skip
                return output, tuple(final)
        elif compiled is not None:
            return compiled_direction(
                compiled, registered.cpp_code, weights, x_proj, sizes, initial, reverse
            )
        return run_direction(
            cell_step(stack.cell, weights),
            x_proj,
            sizes,
            initial,
            reverse=reverse,
            record=None if records is None else records[layer][index],
            probe=None if probe is None else probe[layer, index],
        )

    return _layers(stack, data, initial_state, direction, with_position=True)


def _layers(stack: Stack, data, initial_state, direction, with_position=False):
    """Every layer and direction of ``stack`` by ``direction(input, initial, weights,
    reverse[, layer, index])``; the directions concatenated, torch.nn's dropout between layers
    (training only, not after the last: the same call, shape and order as torch.nn's CPU
    kernel, so the same seed gives the same mask)."""
    D = stack.num_directions
    layer_input = data
    finals: list[list[Tensor]] = [[] for _ in initial_state]
    for layer, per_direction in enumerate(stack.directions):
        outputs = []
        for index, weights in enumerate(per_direction):
            initial = tuple(s[layer * D + index] for s in initial_state)
            position = (layer, index) if with_position else ()
            output, final = direction(layer_input, initial, weights, index == 1, *position)
            outputs.append(output)
            for k, s in enumerate(final):
                finals[k].append(s)
        layer_input = torch.cat(outputs, dim=-1) if D == 2 else outputs[0]
        if stack.dropout > 0 and layer < stack.num_layers - 1:
            layer_input = F.dropout(layer_input, stack.dropout, training=True)
    return layer_input, tuple(torch.stack(f) for f in finals)


def _one_layer_at_a_time(route, stack, data, batch_sizes, initial_state):
    """Each layer's output h^l (N, D·P) is multiplied by one mask per sequence, m / (1 − p) of
    shape (B, D·P), the same at every step, before it enters layer l + 1."""
    layer_data, sizes = _as_packed(data, batch_sizes)
    D = stack.num_directions
    whole = Route(route.engine, route.loop)
    finals = []
    for index in range(stack.num_layers):
        one = stack.layers(range(index, index + 1))
        state = tuple(s[index * D : (index + 1) * D] for s in initial_state)
        if route.engine == "reference":
            layer_data, final = _reference(whole, one, layer_data, sizes, state, None, None)
        else:  # torch's kernel or the BPTT, on equal lengths: (T, B, ·) views
            x = layer_data.view(len(sizes), sizes[0], layer_data.shape[-1])
            if route.engine == "fused":
                output, final = _fused(one, x, None, state)
            else:
                output, final = _bptt(one, x, state)
            layer_data = output.reshape(layer_data.shape[0], output.shape[-1])
        finals.append(final)
        if index < stack.num_layers - 1:
            mask = sequence_mask(sizes[0], layer_data.shape[-1], stack.dropout, data)
            layer_data = mask_packed_rows(layer_data, mask, sizes)
    final = tuple(torch.cat(parts) for parts in zip(*finals, strict=True))
    if batch_sizes is None:
        layer_data = layer_data.view(*data.shape[:2], -1)
    return layer_data, final
