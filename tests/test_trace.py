"""layer.trace(): every step's internals, checked against the equations recomputed by hand."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence
from torch.testing import assert_close

import rnnkit
from rnnkit.nn import recurrence


def by_hand(kind, layer, layer_index, direction, xs, h, c):
    """Run one sequence through one layer and direction, the textbook way, one step at a time.

    xs: (T, I) the layer's input; h, c: (H,) initial states. Returns per-step dicts.
    """
    suffix = f"_l{layer_index}" + ("_reverse" if direction else "")
    w_ih, w_hh = getattr(layer, "weight_ih" + suffix), getattr(layer, "weight_hh" + suffix)
    b_ih, b_hh = getattr(layer, "bias_ih" + suffix), getattr(layer, "bias_hh" + suffix)
    w_hr = getattr(layer, "weight_hr" + suffix, None)
    hidden = layer.hidden_size
    block = lambda m, k: m[k * hidden : (k + 1) * hidden]  # noqa: E731 (gate k's rows)
    steps = range(len(xs) - 1, -1, -1) if direction else range(len(xs))
    records = {}
    for t in steps:
        x = xs[t]
        if kind == "LSTM":
            pre = [
                block(w_ih, k) @ x + block(b_ih, k) + block(w_hh, k) @ h + block(b_hh, k)
                for k in range(4)
            ]
            i, f, o = torch.sigmoid(pre[0]), torch.sigmoid(pre[1]), torch.sigmoid(pre[3])
            g = torch.tanh(pre[2])
            c = f * c + i * g
            h = o * torch.tanh(c)
            if w_hr is not None:
                h = w_hr @ h
            records[t] = {"h": h, "c": c, "i": i, "f": f, "g": g, "o": o}
        elif kind == "GRU":
            r = torch.sigmoid(
                block(w_ih, 0) @ x + block(b_ih, 0) + block(w_hh, 0) @ h + block(b_hh, 0)
            )
            z = torch.sigmoid(
                block(w_ih, 1) @ x + block(b_ih, 1) + block(w_hh, 1) @ h + block(b_hh, 1)
            )
            n = torch.tanh(
                block(w_ih, 2) @ x + block(b_ih, 2) + r * (block(w_hh, 2) @ h + block(b_hh, 2))
            )
            h = (1 - z) * n + z * h
            records[t] = {"h": h, "r": r, "z": z, "n": n}
        else:
            h = torch.tanh(w_ih @ x + b_ih + w_hh @ h + b_hh)
            records[t] = {"h": h}
    return records


@pytest.mark.parametrize(
    ("kind", "kwargs"), [("LSTM", {}), ("LSTM", {"proj_size": 2}), ("GRU", {}), ("RNN", {})]
)
def test_trace_internals_equal_the_equations_by_hand(kind, kwargs):
    layer = getattr(rnnkit, kind)(3, 4, num_layers=2, bidirectional=True, **kwargs).double()
    lengths = [3, 5, 1]
    padded = torch.randn(5, 3, 3, dtype=torch.double)
    trace = layer.trace(pack_padded_sequence(padded, lengths, enforce_sorted=False))
    size = kwargs.get("proj_size") or 4

    assert trace.hidden.shape == (2, 2, 5, 3, size)
    assert trace.lengths.tolist() == lengths
    assert trace.mask.T.tolist() == [[t < n for t in range(5)] for n in lengths]
    for b, length in enumerate(lengths):
        layer_input = padded[:length, b]
        for layer_index in range(2):
            outputs = []
            for direction in range(2):
                records = by_hand(
                    kind,
                    layer,
                    layer_index,
                    direction,
                    layer_input,
                    torch.zeros(size, dtype=torch.double),
                    torch.zeros(4, dtype=torch.double),
                )
                for t in range(length):
                    for name, value in records[t].items():
                        recorded = {"h": trace.hidden, "c": trace.cell}.get(name)
                        if recorded is None:
                            recorded = trace.gates[name]
                        assert_close(
                            recorded[layer_index, direction, t, b], value, rtol=1e-12, atol=1e-12
                        )
                assert torch.all(trace.hidden[layer_index, direction, length:, b] == 0)
                outputs.append(torch.stack([records[t]["h"] for t in range(length)]))
            layer_input = torch.cat(outputs, dim=1)


def test_trace_returns_what_forward_returns():
    layer = rnnkit.LSTM(3, 4, num_layers=2, batch_first=True).double()
    x = torch.randn(2, 6, 3, dtype=torch.double)
    layer.engine = "reference"  # what the trace runs
    output, (h, c) = layer(x)
    trace = layer.trace(x)
    assert torch.equal(trace.output, output)
    assert torch.equal(trace.state[0], h) and torch.equal(trace.state[1], c)
    layer.engine = "auto"  # the default; agrees with the trace to round-off
    assert_close(layer(x)[0], output, rtol=1e-12, atol=1e-12)
    # the last layer's hidden states are the output; the last step's are h_n
    assert torch.equal(trace.hidden[-1, 0].transpose(0, 1), output)
    assert torch.equal(trace.hidden[:, 0, -1], h)
    assert torch.equal(trace.cell[:, 0, -1], c)
    assert set(trace.gates) == {"i", "f", "g", "o"}
    assert layer.trace(x[0]).hidden.shape == (2, 1, 6, 1, 4)  # unbatched: B = 1


def test_probe_gives_the_gradient_of_the_loss_with_respect_to_every_hidden_state():
    layer = rnnkit.RNN(2, 3).double()
    layer.engine = "reference"  # what the trace runs, so that the outputs are equal
    x = torch.randn(6, 2, dtype=torch.double)
    trace = layer.trace(x, probe_gradients=True)
    assert torch.equal(trace.output, layer(x)[0])  # the probe adds zero
    trace.output[-1].sum().backward()  # a loss at the last step only

    # By hand: unroll the cell, keep every h_t, ask autograd for dL/dh_t.
    hidden_states, h = [], torch.zeros(3, dtype=torch.double)
    for t in range(6):
        h = torch.tanh(
            layer.weight_ih_l0 @ x[t] + layer.bias_ih_l0 + layer.weight_hh_l0 @ h + layer.bias_hh_l0
        )
        hidden_states.append(h)
    expected = torch.autograd.grad(hidden_states[-1].sum(), hidden_states)
    assert_close(trace.hidden_grad[0, 0, :, 0], torch.stack(expected), rtol=1e-12, atol=1e-12)


def test_hidden_grad_without_a_probe_says_how_to_get_one():
    trace = rnnkit.GRU(2, 3).trace(torch.randn(4, 2))
    with pytest.raises(ValueError, match="probe_gradients=True"):
        _ = trace.hidden_grad


def test_forward_records_nothing(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("forward must not build a trace")

    monkeypatch.setattr(recurrence.StepRecord, "empty", fail)
    layer = rnnkit.LSTM(3, 4, num_layers=2, bidirectional=True)
    layer(torch.randn(5, 2, 3))
    with pytest.raises(AssertionError, match="must not build"):
        layer.trace(torch.randn(5, 2, 3))


def test_probe_gradients_follow_the_caller_order_of_an_unsorted_packed_batch():
    from torch.nn.utils.rnn import pad_packed_sequence

    layer = rnnkit.LSTM(2, 3, bidirectional=True).double()
    x = torch.randn(5, 3, 2, dtype=torch.double)
    trace = layer.trace(
        pack_padded_sequence(x, [2, 5, 3], enforce_sorted=False), probe_gradients=True
    )
    output, _ = pad_packed_sequence(trace.output)
    output[1, 2].sum().backward()  # a loss on sequence 2 (length 3) at step 1 only
    grad = trace.hidden_grad  # (L, D, T, B, P)
    assert grad[:, :, :, [0, 1]].abs().sum() == 0  # other sequences get nothing
    steps_with_grad = [
        torch.nonzero(grad[0, d, :, 2].abs().sum(-1)).flatten().tolist() for d in (0, 1)
    ]
    assert steps_with_grad == [[0, 1], [1, 2]]  # forward: h_0, h_1; reverse: h_2, h_1


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("form", ["time-major", "batch_first", "unbatched"])
def test_trace_without_gradients_is_recomputed_from_the_outputs_and_records_the_same(
    kind, form, monkeypatch
):
    """Under no_grad a plain call's record is recomputed from each layer's outputs
    (nn/trace_fast.py): every record equals the reference's per-step record, and so do output
    and state."""
    from rnnkit.nn import trace_fast

    batch_first = form == "batch_first"
    layer = getattr(rnnkit, kind)(3, 5, num_layers=2, bidirectional=True, batch_first=batch_first)
    layer = layer.double().eval()
    x = torch.randn(*((7, 3) if form == "unbatched" else (2, 7, 3)), dtype=torch.double)
    if form == "time-major":
        x = x.transpose(0, 1)
    state = torch.randn(4, 5, dtype=torch.double) if form == "unbatched" else None
    hx = (state, state.cos()) if kind == "LSTM" and state is not None else state
    reference = layer.trace(x, hx)  # grad mode on, the weights require grad: the reference
    calls = []
    real = trace_fast.trace_fast
    monkeypatch.setattr("rnnkit.nn.layers.trace_fast", lambda *a: calls.append(1) or real(*a))
    with torch.no_grad():
        fast = layer.trace(x, hx)
    assert calls == [1]
    assert_close(fast.output, reference.output, rtol=1e-12, atol=1e-12)
    for ours, theirs in zip(
        fast.state if kind == "LSTM" else [fast.state],
        reference.state if kind == "LSTM" else [reference.state],
        strict=True,
    ):
        assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    assert_close(fast.hidden, reference.hidden, rtol=1e-12, atol=1e-12)
    if kind == "LSTM":
        assert_close(fast.cell, reference.cell, rtol=1e-12, atol=1e-12)
    assert fast.gates.keys() == reference.gates.keys()
    for name in fast.gates:
        assert_close(fast.gates[name], reference.gates[name], rtol=1e-12, atol=1e-12)
    assert torch.equal(fast.mask, reference.mask)
    assert torch.equal(fast.lengths, reference.lengths)


def test_trace_with_gradients_dropout_or_projection_records_through_the_reference(monkeypatch):
    monkeypatch.setattr("rnnkit.nn.layers.trace_fast", lambda *a: pytest.fail("recomputed"))
    x = torch.randn(4, 2, 3)
    rnnkit.LSTM(3, 5).trace(x)  # gradients may be wanted
    with torch.no_grad():
        rnnkit.LSTM(3, 5, proj_size=2).trace(x)
        rnnkit.GRU(3, 5, num_layers=2, dropout=0.5).train().trace(x)
        layer = rnnkit.RNN(3, 5)
        trace = layer.trace(x, probe_gradients=True)
    assert trace.hidden_probe is not None
