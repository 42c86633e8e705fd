"""Bad input gets torch.nn's exception type and a message that contains torch.nn's text
(code in the wild matches on it), followed by rnnkit's explanation; edge cases torch.nn allows
(a cell of hidden size 0) work as in torch.nn."""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_sequence

import rnnkit


def theirs_and_ours(kind, *args, **kwargs):
    """(torch.nn layer, rnnkit layer) of the same arguments, in that order; the weights are not
    copied, since these tests only need both to refuse the same input with the same message."""
    torch.manual_seed(0)
    theirs = getattr(nn, kind)(*args, **kwargs)
    ours = getattr(rnnkit, kind)(*args, **kwargs)
    return theirs, ours


def raised(function):
    try:
        function()
    except Exception as error:
        return error
    return None


def assert_same_error(theirs, ours, text_is_torchs=True):
    """torch.nn's call raises; rnnkit's raises the same type, its message containing torch's
    (where torch.nn's message is its own check, not an error from deep inside a kernel)."""
    expected, got = raised(theirs), raised(ours)
    assert expected is not None, "torch.nn accepts this: the case is not an error"
    assert got is not None, f"rnnkit accepted what torch.nn refuses: {expected}"
    assert isinstance(got, type(expected)), f"{type(got).__name__} is not {type(expected)}"
    if text_is_torchs:
        assert str(expected) in str(got), f"torch.nn: {expected!s}\nrnnkit:   {got!s}"
    assert len(str(got)) > len(str(expected)), "rnnkit adds its explanation and fix"


KINDS = ["RNN", "LSTM", "GRU"]


def state(kind, *shape):
    h = torch.zeros(*shape)
    return (h, h.clone()) if kind == "LSTM" else h


LAYER_CALLS = {
    "4-D input": lambda kind: (torch.zeros(2, 3, 4, 5), None),
    "wrong input size": lambda kind: (torch.zeros(4, 2, 6), None),
    "wrong dtype": lambda kind: (torch.zeros(4, 2, 5, dtype=torch.float64), None),
    "wrong hidden size": lambda kind: (torch.zeros(4, 2, 5), state(kind, 2, 3, 3)),
    "2-D hx with a batch": lambda kind: (torch.zeros(4, 2, 5), state(kind, 2, 3)),
    "3-D hx unbatched": lambda kind: (torch.zeros(4, 5), state(kind, 2, 1, 3)),
    "packed data of 3-D": lambda kind: (
        pack_sequence([torch.zeros(3, 1, 5), torch.zeros(2, 1, 5)]),
        None,
    ),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", LAYER_CALLS)
def test_layer_call_errors_are_torch_nns(kind, case):
    theirs, ours = theirs_and_ours(kind, 5, 3, num_layers=2)
    inputs = LAYER_CALLS[case](kind)
    # torch.nn.LSTM does not check packed data's dimensions: its kernel fails on a broadcast.
    text_is_torchs = not (kind == "LSTM" and case == "packed data of 3-D")
    assert_same_error(lambda: theirs(*inputs), lambda: ours(*inputs), text_is_torchs)


CONSTRUCTIONS = {
    "hidden_size 0": ((5, 0), {}),
    "input_size 0": ((0, 3), {}),
    "num_layers 0": ((5, 3), {"num_layers": 0}),
    "hidden_size float": ((5, 3.0), {}),
    "dropout 2": ((5, 3), {"dropout": 2.0}),
    "bias not bool": ((5, 3), {"bias": 1}),
    "batch_first not bool": ((5, 3), {"batch_first": 1}),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CONSTRUCTIONS)
def test_layer_constructor_errors_are_torch_nns(kind, case):
    args, kwargs = CONSTRUCTIONS[case]
    assert_same_error(
        lambda: getattr(nn, kind)(*args, **kwargs), lambda: getattr(rnnkit, kind)(*args, **kwargs)
    )


def test_projection_errors_are_torch_nns():
    for kwargs in ({"proj_size": 3}, {"proj_size": -1}):
        assert_same_error(
            lambda k=kwargs: nn.LSTM(5, 3, **k), lambda k=kwargs: rnnkit.LSTM(5, 3, **k)
        )
    assert_same_error(lambda: nn.GRU(5, 3, proj_size=2), lambda: rnnkit.GRU(5, 3, proj_size=2))
    assert_same_error(
        lambda: nn.RNN(5, 3, nonlinearity="gelu"), lambda: rnnkit.RNN(5, 3, nonlinearity="gelu")
    )


CELL_CALLS = {
    "3-D input": lambda kind: (torch.zeros(2, 3, 5), None),
    "wrong input size": lambda kind: (torch.zeros(2, 6), None),
    "3-D hidden": lambda kind: (torch.zeros(2, 5), state(kind, 1, 2, 3)),
    "wrong hidden size": lambda kind: (torch.zeros(2, 5), state(kind, 2, 4)),
    "batch mismatch": lambda kind: (torch.zeros(2, 5), state(kind, 3, 3)),
}


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("case", CELL_CALLS)
def test_cell_call_errors_are_torch_nns(kind, case):
    theirs, ours = theirs_and_ours(kind, 5, 3)
    inputs = CELL_CALLS[case](kind.removesuffix("Cell"))
    assert_same_error(lambda: theirs(*inputs), lambda: ours(*inputs))


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_a_cell_of_hidden_size_zero_works_as_torch_nns(kind):
    theirs, ours = theirs_and_ours(kind, 5, 0)
    x = torch.randn(2, 5)
    expected, got = theirs(x), ours(x)
    for e, g in zip(
        torch.utils._pytree.tree_leaves(expected), torch.utils._pytree.tree_leaves(got), strict=True
    ):
        assert e.shape == g.shape == (2, 0)
