"""The layers beyond the oracle matrix: packing, dropout, gradcheck, initialisation, errors."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.testing import assert_close

import rnnkit
from helpers import RNNKIT_LAYERS, TORCH_LAYERS, layer_pair
from rnnkit.errors import InputShapeError

KINDS = ["RNN", "LSTM", "GRU"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_batch_equals_each_sequence_alone(kind, bidirectional):
    layer = RNNKIT_LAYERS[kind](3, 4, num_layers=2, bidirectional=bidirectional).double()
    lengths = [2, 6, 1, 4]
    padded = torch.randn(6, 4, 3, dtype=torch.double)
    output, final = layer(pack_padded_sequence(padded, lengths, enforce_sorted=False))
    output, _ = pad_packed_sequence(output)
    finals = final if kind == "LSTM" else (final,)
    for b, length in enumerate(lengths):
        alone_output, alone_final = layer(padded[:length, b])  # unbatched, exactly its steps
        alone_finals = alone_final if kind == "LSTM" else (alone_final,)
        assert_close(output[:length, b], alone_output, rtol=1e-12, atol=1e-12)
        assert torch.all(output[length:, b] == 0)  # padding is padding, not computed
        for packed_state, alone_state in zip(finals, alone_finals, strict=True):
            assert_close(packed_state[:, b], alone_state, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_draws_the_same_mask_as_torch(kind):
    ours, reference = layer_pair(kind, 3, 5, num_layers=3, dropout=0.5, bidirectional=True)
    x = torch.randn(7, 2, 3, dtype=torch.double)
    torch.manual_seed(11)
    out_a, _ = ours(x)
    torch.manual_seed(11)
    out_b, _ = reference(x)
    assert_close(out_a, out_b, rtol=1e-12, atol=1e-12)
    ours.eval()
    reference.eval()
    assert_close(ours(x)[0], reference(x)[0], rtol=1e-12, atol=1e-12)


def test_dropout_is_applied_between_layers_in_training_only():
    layer = rnnkit.GRU(3, 5, num_layers=2, dropout=0.9).double()
    x = torch.randn(4, 2, 3, dtype=torch.double)
    train_a, train_b = layer(x)[0], layer(x)[0]
    assert not torch.equal(train_a, train_b)
    layer.eval()
    assert torch.equal(layer(x)[0], layer(x)[0])


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        rnnkit.LSTM(3, 4, dropout=0.2)


@pytest.mark.slow  # seconds: gradcheck of every layout
@pytest.mark.parametrize(
    ("kind", "kwargs"),
    [
        ("RNN", {"nonlinearity": "tanh"}),
        ("RNN", {"nonlinearity": "relu"}),
        ("LSTM", {}),
        ("LSTM", {"proj_size": 2}),
        ("GRU", {}),
    ],
)
def test_layer_gradcheck(kind, kwargs):
    layer = RNNKIT_LAYERS[kind](2, 3, num_layers=2, bidirectional=True, **kwargs).double()
    names = [name for name, _ in layer.named_parameters()]
    x = torch.randn(4, 2, 2, dtype=torch.double, requires_grad=True)

    def function(x, *weights):
        packed = pack_padded_sequence(x, [4, 2], enforce_sorted=False)
        output, final = torch.func.functional_call(
            layer, dict(zip(names, weights, strict=True)), (packed,)
        )
        finals = final if isinstance(final, tuple) else (final,)
        return (output.data, *finals)

    assert torch.autograd.gradcheck(function, (x, *layer.parameters()))


@pytest.mark.parametrize("kind", KINDS)
def test_initialisation_and_repr_match_torch(kind):
    kwargs = {"num_layers": 2, "bidirectional": True, "batch_first": True, "bias": False}
    if kind == "LSTM":
        kwargs["proj_size"] = 2
    torch.manual_seed(5)
    reference = TORCH_LAYERS[kind](3, 4, **kwargs)
    torch.manual_seed(5)
    ours = RNNKIT_LAYERS[kind](3, 4, **kwargs)
    assert list(ours.state_dict()) == list(reference.state_dict())
    for a, b in zip(ours.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)
    assert repr(ours) == repr(reference)
    assert [[p.shape for p in w] for w in ours.all_weights] == [
        [p.shape for p in w] for w in reference.all_weights
    ]


def test_rnn_positional_arguments_follow_torch():
    ours, reference = rnnkit.RNN(3, 4, 2, "relu"), torch.nn.RNN(3, 4, 2, "relu")
    assert ours.nonlinearity == reference.nonlinearity == "relu"
    assert ours.num_layers == reference.num_layers == 2
    # torch.nn's repr leaves the nonlinearity out; ours shows it.
    assert repr(ours) == "RNN(3, 4, num_layers=2, nonlinearity=relu)"
    assert repr(reference) == "RNN(3, 4, num_layers=2)"


def test_float32_default_and_dtype_argument():
    layer = rnnkit.LSTM(3, 4)
    assert layer.weight_ih_l0.dtype == torch.float32
    output, (h, c) = layer(torch.randn(5, 2, 3))
    assert output.dtype == h.dtype == c.dtype == torch.float32
    assert rnnkit.GRU(3, 4, dtype=torch.float64, device="cpu").weight_hh_l0.dtype == torch.float64


@pytest.mark.parametrize("kind", KINDS)
def test_empty_batch_matches_torch(kind):
    ours, reference = layer_pair(kind, 3, 4)
    x = torch.randn(5, 0, 3, dtype=torch.double)
    out_a, out_b = ours(x)[0], reference(x)[0]
    assert out_a.shape == out_b.shape == (5, 0, 4)


def test_flatten_parameters_is_accepted():
    layer = rnnkit.LSTM(3, 4)
    layer.flatten_parameters()
    assert [p.shape for p in layer._flat_weights] == [(16, 3), (16, 4), (16,), (16,)]


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: rnnkit.GRU(3, 4, proj_size=2), ValueError, "only supported for LSTM"),
        (lambda: rnnkit.RNN(3, 4, proj_size=2), ValueError, "only supported for LSTM"),
        (lambda: rnnkit.LSTM(3, 4, proj_size=4), ValueError, "smaller than hidden_size"),
        (lambda: rnnkit.LSTM(3, 4, proj_size=-1), ValueError, "positive integer or zero"),
        (lambda: rnnkit.LSTM(3, 4, dropout=1.5), ValueError, r"range \[0, 1\]"),
        (lambda: rnnkit.LSTM(3, 4, dropout=True), ValueError, r"range \[0, 1\]"),
        (lambda: rnnkit.LSTM(3, 0), ValueError, "hidden_size must be greater than zero"),
        (lambda: rnnkit.LSTM(3, 4, num_layers=0), ValueError, "num_layers must be greater"),
        (lambda: rnnkit.LSTM(3, 4, num_layers=1.5), TypeError, "num_layers should be of type"),
        (lambda: rnnkit.GRU(3.0, 4), TypeError, "input_size should be of type int"),
        (lambda: rnnkit.GRU(3, 4, batch_first=1), TypeError, "batch_first should be of type"),
        (lambda: rnnkit.RNN(3, 4, nonlinearity="gelu"), ValueError, "'tanh' or 'relu'"),
    ],
)
def test_constructor_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize(
    ("kind", "call", "message"),
    [
        ("GRU", lambda m: m(torch.randn(5)), r"\(T, I\) unbatched"),
        ("GRU", lambda m: m(torch.randn(2, 5, 3, 1)), "got 4D"),
        ("LSTM", lambda m: m(torch.randn(5, 2, 4)), "Expected 3, got 4"),
        (
            "RNN",
            lambda m: m(torch.randn(0, 2, 3)),
            "Expected sequence length to be larger than 0 in RNN",
        ),
        ("GRU", lambda m: m(torch.randn(5, 2, 3), torch.randn(1, 3, 4)), r"size \(1, 2, 4\)"),
        ("GRU", lambda m: m(torch.randn(5, 2, 3), torch.randn(2, 4)), "hx should also be 3-D"),
        ("GRU", lambda m: m(torch.randn(5, 3), torch.randn(1, 2, 4)), "unbatched"),
        (
            "LSTM",
            lambda m: m(torch.randn(5, 2, 3), (torch.randn(1, 2, 4), torch.randn(2, 2, 4))),
            r"Expected hidden\[1\] size \(1, 2, 4\).*hx\[1\] \(c_0\)",
        ),
        ("LSTM", lambda m: m(torch.randn(5, 2, 3, dtype=torch.double)), "dtype"),
        (
            "RNN",
            lambda m: m(torch.randn(5, 2, 3), torch.randn(1, 2, 4, dtype=torch.double)),
            "convert it",
        ),
        (
            "GRU",
            lambda m: m(
                pack_padded_sequence(torch.randn(5, 3, 3), [5, 2, 3], enforce_sorted=False),
                torch.randn(2, 3, 4),
            ),
            r"size \(1, 3, 4\)",
        ),
    ],
)
def test_forward_errors_name_the_problem(kind, call, message):
    with pytest.raises(InputShapeError, match=message):
        call(RNNKIT_LAYERS[kind](3, 4))


def test_forward_errors_keep_torchs_exception_types():
    layer = rnnkit.LSTM(3, 4)
    with pytest.raises(ValueError):  # torch.nn raises ValueError for a 4-D input
        layer(torch.randn(1, 2, 3, 4))
    with pytest.raises(RuntimeError):  # ... and RuntimeError for a wrong input size
        layer(torch.randn(2, 3, 5))


def test_lstm_rejects_a_bare_tensor_state():
    with pytest.raises(TypeError, match=r"tuple \(h_0, c_0\)"):
        rnnkit.LSTM(3, 4)(torch.randn(5, 2, 3), torch.randn(1, 2, 4))


def test_non_tensor_input_is_rejected():
    with pytest.raises(TypeError, match="Tensor or a PackedSequence"):
        rnnkit.GRU(3, 4)([[1.0, 2.0, 3.0]])
