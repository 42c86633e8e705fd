"""The layers against torch.nn (float64): a property-based matrix over every option and input form.

For each drawn configuration, rnnkit and torch.nn with the same weights must give the same
output, final state, input and initial-state gradients and every parameter gradient, and the
state_dict must load in both directions.
"""

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence
from torch.testing import assert_close

from helpers import TORCH_LAYERS, layer_pair

FORMS = ["batched", "unbatched", "packed_sorted", "packed_unsorted"]


@st.composite
def configurations(draw):
    kind = draw(st.sampled_from(["RNN_TANH", "RNN_RELU", "LSTM", "GRU"]))
    hidden_size = draw(st.integers(1, 5))
    kwargs = {
        "input_size": draw(st.integers(1, 4)),
        "hidden_size": hidden_size,
        "num_layers": draw(st.integers(1, 3)),
        "bias": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "bidirectional": draw(st.booleans()),
    }
    if kind.startswith("RNN"):
        kwargs["nonlinearity"] = kind[4:].lower()
        kind = "RNN"
    if kind == "LSTM" and hidden_size > 1:
        kwargs["proj_size"] = draw(st.integers(0, hidden_size - 1))
    form = draw(st.sampled_from(FORMS))
    steps = draw(st.integers(1, 6))
    batch = 1 if form == "unbatched" else draw(st.integers(1, 4))
    lengths = None
    if form.startswith("packed"):
        lengths = draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch))
        if form == "packed_sorted":
            lengths.sort(reverse=True)
    with_state = draw(st.booleans())
    engine = draw(st.sampled_from(["auto", "bptt", "reference"]))
    return kind, kwargs, form, steps, batch, lengths, with_state, engine


def make_input(kwargs, form, steps, batch, lengths):
    """A leaf tensor x to differentiate against, and the input built from it."""
    if form == "unbatched":
        x = torch.randn(steps, kwargs["input_size"], dtype=torch.double, requires_grad=True)
        return x, x
    shape = (batch, steps) if kwargs["batch_first"] else (steps, batch)
    x = torch.randn(*shape, kwargs["input_size"], dtype=torch.double, requires_grad=True)
    if form == "batched":
        return x, x
    packed = pack_padded_sequence(
        x, lengths, batch_first=kwargs["batch_first"], enforce_sorted=form == "packed_sorted"
    )
    return x, packed


def make_state(kind, kwargs, form, batch):
    directions = 2 if kwargs["bidirectional"] else 1
    batch_shape = () if form == "unbatched" else (batch,)
    rows = kwargs["num_layers"] * directions
    size = kwargs.get("proj_size") or kwargs["hidden_size"]
    h = torch.randn(rows, *batch_shape, size, dtype=torch.double, requires_grad=True)
    if kind != "LSTM":
        return h, [h]
    c = torch.randn(rows, *batch_shape, kwargs["hidden_size"], dtype=torch.double)
    c.requires_grad_()
    return (h, c), [h, c]


def tensors_of(value):
    if isinstance(value, PackedSequence):
        return [value.data]
    if isinstance(value, tuple):
        return [t for v in value for t in tensors_of(v)]
    return [value]


def run(module, inputs, state, leaves):
    output, final = module(inputs, state)
    outputs = tensors_of(output) + tensors_of(final)
    # A fixed random weighting makes every element of every output reach the loss.
    generator = torch.Generator().manual_seed(1)
    loss = sum(
        (o * torch.randn(o.shape, generator=generator, dtype=o.dtype)).sum() for o in outputs
    )
    # retain_graph: the packed input (and its graph) is shared by both modules.
    gradients = torch.autograd.grad(
        loss, leaves + list(module.parameters()), allow_unused=True, retain_graph=True
    )
    return output, final, outputs, gradients


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configurations())
def test_layer_matches_torch(configuration):
    kind, kwargs, form, steps, batch, lengths, with_state, engine = configuration
    ours, reference = layer_pair(kind, **kwargs)
    ours.engine = engine  # auto, the hand-written BPTT where it applies, or the reference
    x, inputs = make_input(kwargs, form, steps, batch, lengths)
    state, state_leaves = make_state(kind, kwargs, form, batch) if with_state else (None, [])
    leaves = [x, *state_leaves]

    out_a, final_a, tensors_a, grads_a = run(ours, inputs, state, leaves)
    out_b, final_b, tensors_b, grads_b = run(reference, inputs, state, leaves)

    assert type(out_a) is type(out_b)
    if isinstance(out_b, PackedSequence):
        assert torch.equal(out_a.batch_sizes, out_b.batch_sizes)
        for name in ("sorted_indices", "unsorted_indices"):
            a, b = getattr(out_a, name), getattr(out_b, name)
            assert (a is None and b is None) or torch.equal(a, b)
    assert type(final_a) is type(final_b)
    assert [t.shape for t in tensors_a] == [t.shape for t in tensors_b]
    # the same memory layout (torch.nn's batch_first output is a transposed view)
    assert [t.is_contiguous() for t in tensors_a] == [t.is_contiguous() for t in tensors_b]
    assert_close(tensors_a, tensors_b, rtol=1e-10, atol=1e-12)
    assert_close(grads_a, grads_b, rtol=1e-9, atol=1e-11)

    # state_dicts move both ways (layer_pair loaded torch's into ours).
    fresh = TORCH_LAYERS[kind](**kwargs).double()
    fresh.load_state_dict(ours.state_dict())
    for a, b in zip(fresh.state_dict().values(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b)
