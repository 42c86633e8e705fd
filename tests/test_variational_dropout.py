"""Variational dropout (rnnkit.nn.dropout): one mask per sequence, the same at every step, in the
layers (between stacked layers) and in the character model (embeddings, head input)."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit
from rnnkit.engine.dispatch import ENGINES
from rnnkit.models.charlm import CharLM
from rnnkit.nn.dropout import variational_dropout

P = 0.4


def test_one_mask_per_sequence_is_used_at_every_step():
    torch.manual_seed(0)
    x = torch.rand(8, 50, 30) + 0.5  # no zeros of its own
    y = variational_dropout(x, P, training=True)
    ratio = y / x  # (B, T, F): 0 or 1 / (1 - p)
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))  # the same at every step
    kept = ratio[:, 0] != 0
    torch.testing.assert_close(ratio[:, 0][kept], torch.full_like(ratio[:, 0][kept], 1 / (1 - P)))
    assert 0 < int(kept.sum()) < kept.numel()
    assert not torch.equal(kept[0], kept[1])  # each sequence has its own mask


def test_the_drop_rate_is_p_and_the_expectation_is_kept():
    torch.manual_seed(0)
    x = torch.ones(400, 3, 500)
    y = variational_dropout(x, P, training=True)
    assert abs(float((y[:, 0] == 0).float().mean()) - P) < 0.01
    assert abs(float(y.mean()) - 1.0) < 0.02


def test_evaluation_p_0_and_p_1():
    x = torch.randn(2, 3, 4)
    assert variational_dropout(x, P, training=False) is x
    assert variational_dropout(x, 0.0, training=True) is x
    assert torch.equal(variational_dropout(x, 1.0, training=True), torch.zeros_like(x))
    layer = rnnkit.GRU(4, 3, num_layers=2, dropout=1.0)
    layer.variational_dropout = True
    layer(torch.randn(2, 1, 4))[0].sum().backward()  # p = 1: zeros between layers, no NaN
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


def stacked_twins(layer):
    """One single-layer module per layer of `layer`, with its weights."""
    kind, D = type(layer).__name__, layer.num_directions
    twins = []
    for index in range(layer.num_layers):
        size = layer.input_size if index == 0 else D * layer.hidden_size
        twin = getattr(rnnkit, kind)(size, layer.hidden_size, bidirectional=layer.bidirectional).to(
            layer.weight_hh_l0.dtype
        )
        twin.engine = layer.engine
        for name in twin._flat_weights_names:
            source = name.replace("_l0", f"_l{index}")
            getattr(twin, name).data.copy_(getattr(layer, source).data)
        twins.append(twin)
    return twins


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_stack_drops_each_layers_output_with_one_mask_per_sequence(kind, engine, dtype):
    torch.manual_seed(0)
    T, B, inputs, H, L = 7, 3, 5, 6, 3
    layer = getattr(rnnkit, kind)(inputs, H, num_layers=L, dropout=P, bidirectional=kind == "GRU")
    layer = layer.to(dtype)
    layer.engine = engine
    layer.variational_dropout = True
    D = layer.num_directions
    x = torch.randn(T, B, inputs, dtype=dtype)
    torch.manual_seed(11)
    output, final = layer(x)

    # The same computation by hand: layer by layer, the masks drawn in the same order.
    twins = stacked_twins(layer)  # (building them draws their initial weights)
    torch.manual_seed(11)
    h, finals = x, []
    for index, twin in enumerate(twins):
        h, last = twin(h)
        finals.append(last[0] if kind == "LSTM" else last)
        if index < L - 1:
            keep = torch.empty(B, D * H, dtype=dtype).bernoulli_(1 - P) / (1 - P)
            h = h * keep  # (T, B, D·H) * (B, D·H): the same mask at every step
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(output, h, rtol=tolerance, atol=tolerance)
    h_n = final[0] if kind == "LSTM" else final
    torch.testing.assert_close(h_n, torch.cat(finals), rtol=tolerance, atol=tolerance)


def test_packed_sequences_get_one_mask_per_sequence():
    torch.manual_seed(0)
    T, B, inputs, H = 6, 3, 4, 5
    layer = rnnkit.LSTM(inputs, H, num_layers=2, dropout=P).double()
    layer.variational_dropout = True
    x = torch.randn(T, B, inputs, dtype=torch.float64)
    lengths = [6, 4, 2]
    torch.manual_seed(5)
    output, _ = layer(pack_padded_sequence(x, lengths))
    padded, _ = pad_packed_sequence(output)

    first, second = stacked_twins(layer)
    torch.manual_seed(5)
    keep = torch.empty(B, H, dtype=torch.float64).bernoulli_(1 - P) / (1 - P)
    for b, length in enumerate(lengths):
        h, _ = first(x[:length, b])
        expected, _ = second(h * keep[b])
        torch.testing.assert_close(padded[:length, b], expected, rtol=1e-12, atol=1e-12)


def test_the_gradient_flows_through_the_kept_units_only():
    torch.manual_seed(0)
    layer = rnnkit.GRU(3, 4, num_layers=2, dropout=0.5).double()
    layer.variational_dropout = True
    output, _ = layer(torch.randn(5, 2, 3, dtype=torch.float64))
    output.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layer.parameters())


def test_evaluation_and_the_flag_off_leave_the_layer_as_torch_nn():
    torch.manual_seed(0)
    layer = rnnkit.LSTM(4, 5, num_layers=2, dropout=P)
    x = torch.randn(6, 2, 4)
    layer.eval()
    plain, _ = layer(x)
    layer.variational_dropout = True
    torch.testing.assert_close(layer(x)[0], plain, rtol=0, atol=0)
    reference = torch.nn.LSTM(4, 5, num_layers=2, dropout=P)
    reference.load_state_dict(layer.state_dict())
    layer.variational_dropout = False
    layer.train()
    reference.train()
    torch.manual_seed(3)
    ours, _ = layer(x)
    torch.manual_seed(3)
    theirs, _ = reference(x)
    torch.testing.assert_close(ours, theirs)  # off: torch.nn's per-step dropout, same draws


def test_the_character_model_locks_its_masks_and_evaluates_unchanged():
    torch.manual_seed(0)
    model = CharLM(10, hidden_size=8, num_layers=2, dropout=0.5, variational_dropout=True)
    assert model.rnn.variational_dropout
    x = torch.rand(3, 9, 8) + 0.5
    dropped = model.drop(x)
    ratio = dropped / x
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))
    plain = CharLM(10, hidden_size=8, num_layers=2, dropout=0.5)
    plain.load_state_dict(model.state_dict())
    ids = torch.randint(0, 10, (3, 9))
    model.eval()
    plain.eval()
    torch.testing.assert_close(model(ids)[0], plain(ids)[0], rtol=0, atol=0)
    model.train()
    logits, _ = model(ids)
    logits.sum().backward()
    assert torch.isfinite(model.embedding.weight.grad).all()
