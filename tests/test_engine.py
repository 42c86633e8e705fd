"""The hand-written BPTT (LSTM, GRU, RNN; C++ and Python loops) against the reference:
gradcheck, equality in float64 and float32, forward and every gradient, dispatch."""

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence
from torch.testing import assert_close

import rnnkit
from helpers import skip_without_a_compiler
from rnnkit.engine import compiled, registered
from rnnkit.engine.gru import gru_sequence
from rnnkit.engine.lstm import lstm_sequence
from rnnkit.engine.rnn import rnn_sequence
from rnnkit.nn import runner

LOOPS = ["cpp", "python"]


@pytest.fixture(params=LOOPS)
def loops(request, monkeypatch):
    """Run the test with the compiled loops, then with the Python loops."""
    if request.param == "cpp":
        skip_without_a_compiler()
    monkeypatch.setenv("RNNKIT_KERNELS", request.param)
    return request.param


def double(*shape):
    return torch.randn(*shape, dtype=torch.double, requires_grad=True)


def direction_inputs(kind: str, bias: bool = True):
    """Random float64 inputs of one direction: x, W_ih, the bias, h0 (c0), W_hh (b_hh)."""
    steps, batch, features, hidden = 5, 3, 2, 4
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind] * hidden
    inputs = [double(steps, batch, features), double(gates, features)]
    inputs.append(double(gates) if bias else None)
    inputs.append(double(batch, hidden))
    if kind == "LSTM":
        inputs.append(double(batch, hidden))
    inputs.append(double(gates, hidden))
    if kind == "GRU":
        inputs.append(double(gates) if bias else None)
    return inputs


SEQUENCES = {
    "LSTM": lstm_sequence,
    "GRU": gru_sequence,
    "RNN": lambda *a: rnn_sequence(*a[:-1], False, a[-1]),
    "RNN-relu": lambda *a: rnn_sequence(*a[:-1], True, a[-1]),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", SEQUENCES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck_and_gradgradcheck(loops, kind, reverse, bias):
    """The hand-written backward (first order) and the recomputed one it hands over to when a
    graph of the gradient is asked for (second order): both against finite differences."""
    sequence = SEQUENCES[kind]
    inputs = direction_inputs(kind.split("-")[0], bias)
    if kind == "RNN-relu":  # keep pre-activations away from the kink at 0
        inputs[0] = (inputs[0].detach() + 3).requires_grad_()

    def function(*args):
        return sequence(*args, reverse)

    assert torch.autograd.gradcheck(function, inputs)
    assert torch.autograd.gradgradcheck(function, inputs)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_second_order_through_non_contiguous_state_and_weights(kind):
    """The loops take contiguous copies; the second-order gradient must still reach the
    caller's own (here transposed) h_0 and W_hh."""
    inputs = direction_inputs(kind)
    h0 = inputs[3].detach().t().contiguous().requires_grad_()  # (H, B), read transposed
    w_hh = inputs[-2 if kind == "GRU" else -1]
    w_hh_t = w_hh.detach().t().contiguous().requires_grad_()  # (H, G·H), read transposed
    sequence = SEQUENCES[kind]

    def function(x, h0_t, w_hh_t):
        arguments = list(inputs)
        arguments[0], arguments[3] = x, h0_t.t()
        arguments[-2 if kind == "GRU" else -1] = w_hh_t.t()
        return sequence(*arguments, False)

    assert torch.autograd.gradgradcheck(function, (inputs[0], h0, w_hh_t))


def test_the_compiled_loops_run_when_asked(monkeypatch):
    skip_without_a_compiler()
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


def run(layer, x, state: tuple):
    output, final = layer(x, state if len(state) == 2 else state[0])
    finals = final if isinstance(final, tuple) else (final,)
    loss = (output * torch.cos(output)).sum() + (finals[0] * 3).sum() + (finals[-1] ** 2).sum()
    inputs = [x, *state, *layer.parameters()]
    return [output, *finals, *torch.autograd.grad(loss, inputs)]


KINDS = {
    "LSTM": lambda **kw: rnnkit.LSTM(**kw),
    "GRU": lambda **kw: rnnkit.GRU(**kw),
    "RNN": lambda **kw: rnnkit.RNN(**kw),
    "RNN-relu": lambda **kw: rnnkit.RNN(nonlinearity="relu", **kw),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_fast_path_equals_the_reference(loops, kind, dtype, bidirectional, batch_first, bias):
    layer = KINDS[kind](
        input_size=3,
        hidden_size=8,
        num_layers=2,
        bias=bias,
        bidirectional=bidirectional,
        batch_first=batch_first,
    ).to(dtype)
    shape = (4, 9, 3) if batch_first else (9, 4, 3)
    x = torch.randn(*shape, dtype=dtype, requires_grad=True)
    directions = 2 if bidirectional else 1
    state = tuple(
        torch.randn(2 * directions, 4, 8, dtype=dtype, requires_grad=True)
        for _ in range(2 if kind == "LSTM" else 1)
    )
    layer.engine = "reference"
    reference = run(layer, x, state)
    layer.engine = "bptt"
    fast = run(layer, x, state)
    tolerance = (
        {"rtol": 1e-10, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 1e-5}
    )
    assert_close(fast, reference, **tolerance)


@pytest.mark.parametrize(
    ("kind", "engine"), [("LSTM", "bptt"), ("GRU", "bptt"), ("LSTM", "fused"), ("GRU", "fused")]
)
def test_dropout_between_layers_draws_the_same_masks(kind, engine):
    """rnnkit's BPTT (LSTM, GRU) and the fused LSTM draw the reference's masks."""
    layer = KINDS[kind](input_size=3, hidden_size=8, num_layers=3, dropout=0.5)
    x = torch.randn(7, 4, 3, requires_grad=True)
    results = []
    for choice in ("reference", engine):
        layer.engine = choice
        torch.manual_seed(5)
        output, _ = layer(x)
        results.append([output, *torch.autograd.grad(output.sum(), [x, *layer.parameters()])])
    assert_close(results[1], results[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_dispatch_to_the_bptt(monkeypatch, kind):
    calls = []
    name = f"{kind.lower()}_sequence"
    original = getattr(registered, name)
    monkeypatch.setattr(registered, name, lambda *a: calls.append(1) or original(*a))
    x = torch.randn(5, 2, 3, dtype=torch.double)

    def layer(engine="auto", **kwargs):
        module = KINDS[kind](input_size=3, hidden_size=4, **kwargs).double()
        module.engine = engine
        return module

    layer()(x)  # float64: no fused kernel, so the default is the BPTT for every kind
    layer("bptt").float()(x.float())  # float32 on request
    assert len(calls) == 2
    if kind == "LSTM":
        layer(proj_size=2)(x)
    layer()(pack_padded_sequence(x, [5, 3]))
    layer().trace(x)
    layer("reference")(x)
    assert len(calls) == 2  # projection, packed input, tracing and the reference do not


def test_a_float32_lstm_takes_the_fused_kernel_by_default(monkeypatch):
    calls = []
    original = runner.fused_rnn
    monkeypatch.setattr(runner, "fused_rnn", lambda *a: calls.append(1) or original(*a))
    x = torch.randn(5, 2, 3)
    rnnkit.LSTM(3, 4)(x)
    assert len(calls) == 1
    rnnkit.LSTM(3, 4).double()(x.double())  # float64: no fused kernel
    rnnkit.GRU(3, 4)(x)
    rnnkit.LSTM(3, 4)(pack_padded_sequence(x, [5, 3]))
    rnnkit.LSTM(3, 4).trace(x)
    rnnkit.LSTM(3, 4, proj_size=2).double()(x.double())  # float64: the reference
    assert len(calls) == 1
    rnnkit.LSTM(3, 4, proj_size=2)(x)  # float32 with a projection: torch's kernel too
    assert len(calls) == 2


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_lstm_equals_the_reference(bidirectional, batch_first, bias):
    layer = rnnkit.LSTM(
        3, 8, num_layers=2, bias=bias, bidirectional=bidirectional, batch_first=batch_first
    )
    x = torch.randn(*((4, 9, 3) if batch_first else (9, 4, 3)), requires_grad=True)
    directions = 2 if bidirectional else 1
    state = tuple(torch.randn(2 * directions, 4, 8, requires_grad=True) for _ in range(2))
    layer.engine = "reference"
    reference = run(layer, x, state)
    layer.engine = "auto"
    assert_close(run(layer, x, state), reference, rtol=1e-4, atol=1e-5)


def test_unknown_engine_is_named_when_set():
    layer = rnnkit.LSTM(3, 4)
    with pytest.raises(ValueError, match="auto, fused, bptt, reference"):
        layer.engine = "turbo"
    with pytest.raises(ValueError, match="auto, fused, bptt, reference"):
        rnnkit.GRU(3, 4, engine="fast")
    assert rnnkit.RNN(3, 4, engine="bptt").engine == "bptt"


@pytest.mark.parametrize("kind", KINDS)
def test_inference_equals_the_reference(loops, kind):
    layer = KINDS[kind](input_size=3, hidden_size=8, num_layers=2).double()
    x = torch.randn(9, 4, 3, dtype=torch.double)
    layer.engine = "reference"
    expected = layer(x)
    layer.engine = "bptt"
    with torch.no_grad():  # nothing is kept for a backward pass
        got = layer(x)
    assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_fused_lstm_in_eval_mode_applies_no_dropout():
    layer = rnnkit.LSTM(3, 8, num_layers=3, dropout=0.5).eval()
    x = torch.randn(7, 4, 3)
    layer.engine = "reference"
    expected = layer(x)
    layer.engine = "fused"
    assert_close(layer(x), expected, rtol=1e-4, atol=1e-5)
    assert_close(layer(x), layer(x), rtol=0, atol=0)  # no random masks


@pytest.mark.parametrize("kind", KINDS)
def test_a_nan_input_stays_nan(loops, kind):
    """The C++ loops are built with -ffast-math: NaN must still come out where it went in, or
    the training loop's non-finite check could not see it."""
    layer = KINDS[kind](input_size=3, hidden_size=8)
    layer.engine = "bptt"
    x = torch.randn(5, 2, 3)
    x[1, 0, 0] = float("nan")
    output, _ = layer(x)
    assert torch.isnan(output[1:, 0]).all() and torch.isfinite(output[:, 1]).all()


def test_a_build_lock_left_by_a_killed_build_is_removed_and_a_live_one_waited_for(tmp_path):
    import os
    import threading
    import time

    lock = tmp_path / "lock"
    lock.touch()
    old = time.time() - compiled.STALE_LOCK_SECONDS - 60
    os.utime(lock, (old, old))
    with pytest.warns(RuntimeWarning, match="interrupted"):
        compiled._wait_for_or_clear_lock(tmp_path)
    assert not lock.exists()
    lock.touch()  # a build running now: wait until it is done
    threading.Timer(1.5, lock.unlink).start()
    started = time.monotonic()
    compiled._wait_for_or_clear_lock(tmp_path)
    assert 1.0 < time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("kind", "kwargs"),
    [("LSTM", {}), ("LSTM", {"proj_size": 3}), ("GRU", {}), ("RNN", {"nonlinearity": "relu"})],
)
def test_reference_steps_in_cpp_equal_the_python_equations(monkeypatch, kind, kwargs):
    """The reference engine on a packed batch, 2 layers, both directions: its C++ loop and steps
    (kernels/cell_steps.cpp) give the Python equations' outputs, gradients and second-order
    gradients (a gradient penalty's gradient) in float64."""
    skip_without_a_compiler()
    torch.manual_seed(0)
    layer = getattr(rnnkit, kind)(3, 5, num_layers=2, bidirectional=True, **kwargs).double()
    layer.engine = "reference"
    x = torch.randn(6, 4, 3, dtype=torch.double, requires_grad=True)

    def run():
        output, _ = layer(pack_padded_sequence(x, [6, 5, 3, 1]))
        loss = output.data.pow(2).sum()
        (gx,) = torch.autograd.grad(loss, x, create_graph=True)
        penalty = torch.autograd.grad(gx.pow(2).sum(), [x, *layer.parameters()])
        return [output.data, gx, *penalty]

    calls = []
    original = runner.compiled_direction
    monkeypatch.setattr(
        runner, "compiled_direction", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    results = {}
    for code in ("cpp", "python"):
        monkeypatch.setenv("RNNKIT_KERNELS", code)
        results[code] = run()
        assert len(calls) == 4  # 2 layers x 2 directions, with the C++ steps only
    assert_close(results["cpp"], results["python"], rtol=1e-10, atol=1e-12)


PACKED_KINDS = [
    ("LSTM", {}),
    ("GRU", {}),
    ("GRU", {"bias": False}),
    ("RNN", {"nonlinearity": "tanh"}),
    ("RNN", {"nonlinearity": "relu"}),
]


@pytest.mark.parametrize("no_gradients", [torch.no_grad, torch.inference_mode])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("kind", "kwargs"), PACKED_KINDS)
def test_packed_inference_loop_equals_torch_nn(monkeypatch, no_gradients, dtype, kind, kwargs):
    """Without gradients the reference engine's packed loop is packed_inference.cpp (one
    product and one pass over the gates per step, the state updated in place): outputs and
    final states equal torch.nn's and the Python equations', with unsorted lengths, an initial
    state, 2 layers and both directions."""
    skip_without_a_compiler()
    torch.manual_seed(0)
    mine = getattr(rnnkit, kind)(3, 5, num_layers=2, bidirectional=True, **kwargs).to(dtype)
    mine.engine = "reference"
    theirs = getattr(torch.nn, kind)(3, 5, num_layers=2, bidirectional=True, **kwargs).to(dtype)
    theirs.load_state_dict(mine.state_dict())
    x = torch.randn(6, 4, 3, dtype=dtype)
    lengths = [3, 6, 1, 5]
    h0 = torch.randn(4, 4, 5, dtype=dtype)
    state = (h0, torch.randn(4, 4, 5, dtype=dtype)) if kind == "LSTM" else h0

    def run(layer):
        with no_gradients():
            packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
            output, final = layer(packed, state)
        return [output.data, *(final if kind == "LSTM" else [final])]

    tolerance = {"rtol": 1e-10, "atol": 1e-12} if dtype == torch.float64 else {}
    monkeypatch.setenv("RNNKIT_KERNELS", "cpp")
    inference = run(mine)
    assert_close(inference, run(theirs), **tolerance)
    monkeypatch.setenv("RNNKIT_KERNELS", "python")
    assert_close(inference, run(mine), **tolerance)


@pytest.mark.parametrize(("kind", "kwargs"), PACKED_KINDS[:2])
def test_packed_loop_keeps_forward_mode_tangents(monkeypatch, kind, kwargs):
    """A dual tensor of torch.autograd.forward_ad needs no requires_grad: the packed loop must
    still go through the recorded steps, or the tangent would be dropped without a word."""
    import torch.autograd.forward_ad as fwAD

    skip_without_a_compiler()
    torch.manual_seed(0)
    layer = getattr(rnnkit, kind)(3, 5, bidirectional=True, **kwargs).double()
    layer.engine = "reference"
    x, tangent = torch.randn(6, 4, 3, dtype=torch.double), torch.randn(6, 4, 3, dtype=torch.double)

    def run():
        with torch.no_grad(), fwAD.dual_level():
            packed = pack_padded_sequence(x, [6, 5, 3, 1])  # packing has no forward AD
            dual = fwAD.make_dual(packed.data, pack_padded_sequence(tangent, [6, 5, 3, 1]).data)
            output, _ = layer(PackedSequence(dual, packed.batch_sizes))
            return fwAD.unpack_dual(output.data).tangent

    monkeypatch.setenv("RNNKIT_KERNELS", "cpp")
    tangents = run()
    monkeypatch.setenv("RNNKIT_KERNELS", "python")
    expected = run()
    assert expected is not None and tangents is not None
    assert_close(tangents, expected, rtol=1e-10, atol=1e-12)


def test_packed_inference_loop_passes_a_nan_on():
    """A NaN in a sequence comes out of the inference loop in that sequence's outputs (the
    loops are built with -ffast-math; the non-finite checks downstream must see it)."""
    skip_without_a_compiler()
    for kind in ("LSTM", "GRU", "RNN"):
        layer = getattr(rnnkit, kind)(3, 5)
        layer.engine = "reference"
        x = torch.randn(4, 2, 3)
        x[1, 0, 0] = float("nan")
        with torch.no_grad():
            output, _ = layer(pack_padded_sequence(x, [4, 3]))
        assert output.data[2::2].isnan().all(), kind  # sequence 0 from step 1 on
        assert not output.data[1::2].isnan().any(), kind
