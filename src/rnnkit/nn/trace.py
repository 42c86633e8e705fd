"""What a layer computed at every step: the record that torch.nn.LSTM/GRU/RNN never show.

``layer.trace(input, hx)`` runs the same forward pass as ``layer(input, hx)`` and returns a
:class:`Trace`. A plain ``layer(input, hx)`` records nothing and pays nothing for this.

Every recorded tensor has the same layout, whatever the input form (batch_first, unbatched,
packed and unsorted), so analysis code never needs to know how the layer was called::

    (L, D, T, B, F)   layer, direction (0 forward, 1 reverse), time step, batch, feature

Time steps are positions in the input sequence: ``hidden[l, 1, t]`` is the reverse direction's
state after reading x_t (its (T − t)-th step). Batch entries are in the caller's order (an
unsorted PackedSequence is put back in the order it was packed from); steps past a sequence's
length are zero, and ``mask`` says which ones are real. An unbatched input has B = 1.
"""

from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence


@dataclass
class Trace:
    """The outputs of one forward pass and every intermediate of the recurrence.

    output, state: exactly what ``layer(input, hx)`` returns.
    hidden: (L, D, T, B, P) h_t of every layer and direction (P = proj_size or hidden_size);
        for the last layer this is the output, for the others the next layer's input
        (before dropout).
    cell: (L, D, T, B, H) the cell state c_t of a cell that carries one (the LSTM's); None
        for the others.
    gates: gate name -> (L, D, T, B, H) activations after their nonlinearity, the names the
        cell's step gives: LSTM i, f, g, o; GRU r, z, n; RNN none.
    mask: (T, B) bool, True where step t of sequence b exists.
    lengths: (B,) int64, the length of each sequence.
    hidden_probe: when traced with ``probe_gradients=True``, a zero tensor shaped like
        ``hidden`` that was added to every h_t inside the recurrence. After a backward pass its
        ``.grad`` (also ``hidden_grad``) is ∂L/∂h_t for every layer, direction and step, the
        total gradient through both the output and the recurrence.
    """

    output: Tensor | PackedSequence
    state: Tensor | tuple[Tensor, Tensor]
    hidden: Tensor
    cell: Tensor | None
    gates: dict[str, Tensor]
    mask: Tensor
    lengths: Tensor
    hidden_probe: Tensor | None = field(default=None, repr=False)
    states: dict[str, Tensor] = field(default_factory=dict)
    """Every state beyond h by the cell's name for it (the LSTM's "c"), each (L, D, T, B, H)."""

    @property
    def hidden_grad(self) -> Tensor | None:
        """∂L/∂h_t, (L, D, T, B, P), once a loss has been backpropagated (probe needed)."""
        if self.hidden_probe is None:
            raise ValueError(
                "this trace has no gradient probe: call layer.trace(input, probe_gradients=True)"
            )
        return self.hidden_probe.grad


def assemble_trace(cell, output, state, records, packed_input, steps, batch, device, probe):
    """Turn per-step records (packed, sorted) into (L, D, T, B, ·) tensors in caller order."""
    if packed_input is not None:
        batch_sizes = packed_input.batch_sizes
        sorted_indices = packed_input.sorted_indices
        unsorted_indices = packed_input.unsorted_indices
    else:
        batch_sizes = torch.full((steps,), batch, dtype=torch.int64)
        sorted_indices = unsorted_indices = None

    def padded(per_step: list[Tensor]) -> Tensor:
        packed = PackedSequence(torch.cat(per_step), batch_sizes, sorted_indices, unsorted_indices)
        return pad_packed_sequence(packed, total_length=steps)[0]  # (T, B, ·)

    def stacked(pick) -> Tensor:
        return torch.stack(
            [torch.stack([padded(pick(r)) for r in layer]) for layer in records]
        )  # (L, D, T, B, ·)

    lengths = (batch_sizes.unsqueeze(1) > torch.arange(batch)).sum(0)  # sorted order
    if unsorted_indices is not None:
        lengths = lengths[unsorted_indices]
    mask = torch.arange(steps).unsqueeze(1) < lengths.unsqueeze(0)  # (T, B)
    gate_names = list(records[0][0].gates)
    states = {name: stacked(lambda r, n=name: r.states[n]) for name in cell.states[1:]}
    return Trace(
        output=output,
        state=state,
        hidden=stacked(lambda r: r.hidden),
        cell=states.get("c"),
        states=states,
        gates={name: stacked(lambda r, n=name: r.gates[n]) for name in gate_names},
        mask=mask.to(device),
        lengths=lengths,
        hidden_probe=probe,
    )


def recomputed_trace(output, state, records: dict, steps: int, batch: int) -> Trace:
    """The Trace of an equal-length call recomputed from its outputs (nn/trace_fast.py)."""
    device = records["hidden"].device
    states = {"c": records["cell"]} if records["cell"] is not None else {}
    return Trace(
        states=states,
        output=output,
        state=state,
        mask=torch.ones(steps, batch, dtype=torch.bool, device=device),
        lengths=torch.full((batch,), steps, dtype=torch.int64),
        **records,
    )
