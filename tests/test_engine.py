"""The hand-written LSTM BPTT against the reference equations: gradcheck, equality, dispatch."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence
from torch.testing import assert_close

import rnnkit
from rnnkit import recurrence
from rnnkit.engine import compiled
from rnnkit.engine.bptt import lstm_sequence


LOOPS = ["cpp", "python"]


@pytest.fixture(params=LOOPS)
def loops(request, monkeypatch):
    """Run the test with the compiled loops, then with the Python loops."""
    monkeypatch.setenv("RNNKIT_KERNELS", request.param)
    return request.param


def test_gradcheck(loops):
    steps, batch, hidden = 5, 3, 4
    inputs = (
        torch.randn(steps, batch, 4 * hidden, dtype=torch.double, requires_grad=True),
        torch.randn(batch, hidden, dtype=torch.double, requires_grad=True),
        torch.randn(batch, hidden, dtype=torch.double, requires_grad=True),
        torch.randn(4 * hidden, hidden, dtype=torch.double, requires_grad=True),
    )
    assert torch.autograd.gradcheck(lstm_sequence, inputs)


def test_the_compiled_loops_run_when_asked(monkeypatch):
    monkeypatch.setenv("RNNKIT_KERNELS", "cpp")
    assert compiled.loops() is not None
    monkeypatch.setenv("RNNKIT_KERNELS", "python")
    assert compiled.loops() is None


def test_a_failed_build_falls_back_with_a_warning(monkeypatch):
    monkeypatch.setattr(compiled, "_build", lambda: (None, "no compiler here"))
    compiled._warn_once.cache_clear()
    monkeypatch.setenv("RNNKIT_KERNELS", "auto")
    with pytest.warns(RuntimeWarning, match="no compiler here"):
        assert compiled.loops() is None
    monkeypatch.setenv("RNNKIT_KERNELS", "cpp")
    with pytest.raises(compiled.KernelBuildError, match="no compiler here"):
        compiled.loops()


def test_an_unknown_kernel_choice_is_named(monkeypatch):
    monkeypatch.setenv("RNNKIT_KERNELS", "fortran")
    with pytest.raises(ValueError, match="auto, cpp, python"):
        compiled.loops()


def run(layer, x, state):
    output, (h, c) = layer(x, state)
    loss = (output * torch.cos(output)).sum() + (h * 3).sum() + (c**2).sum()
    return [output, h, c, *torch.autograd.grad(loss, [x, *state, *layer.parameters()])]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_fast_path_equals_the_reference(loops, dtype, bidirectional, batch_first, bias):
    layer = rnnkit.LSTM(
        3, 8, num_layers=2, bias=bias, bidirectional=bidirectional, batch_first=batch_first
    )
    layer = layer.to(dtype)
    shape = (4, 9, 3) if batch_first else (9, 4, 3)
    x = torch.randn(*shape, dtype=dtype, requires_grad=True)
    directions = 2 if bidirectional else 1
    state = tuple(
        torch.randn(2 * directions, 4, 8, dtype=dtype, requires_grad=True) for _ in range(2)
    )
    layer.engine = "reference"
    reference = run(layer, x, state)
    layer.engine = "fast"
    fast = run(layer, x, state)
    tolerance = (
        {"rtol": 1e-10, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 1e-5}
    )
    assert_close(fast, reference, **tolerance)


def test_dispatch(monkeypatch):
    calls = []
    original = recurrence.lstm_sequence
    monkeypatch.setattr(recurrence, "lstm_sequence", lambda *a: calls.append(1) or original(*a))
    x = torch.randn(5, 2, 3)
    rnnkit.LSTM(3, 4)(x)
    assert len(calls) == 1  # by default a plain LSTM takes the fast path
    rnnkit.LSTM(3, 4, proj_size=2)(x)
    rnnkit.LSTM(3, 4)(pack_padded_sequence(x, [5, 3]))
    rnnkit.LSTM(3, 4).trace(x)
    reference = rnnkit.LSTM(3, 4)
    reference.engine = "reference"
    reference(x)
    assert len(calls) == 1  # projection, packed input, tracing and the reference do not


def test_unknown_engine_is_named():
    layer = rnnkit.LSTM(3, 4)
    layer.engine = "turbo"
    with pytest.raises(ValueError, match="'reference' or 'fast'"):
        layer(torch.randn(2, 1, 3))
