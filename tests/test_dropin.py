"""Drop-in beyond the forward pass: what a PyTorch user does with torch.nn's RNNs works with
rnnkit's on every engine, with the values torch.nn gets (float64 oracle where values are
compared): second-order gradients, torch.func transforms, torch.compile, torch.export,
jit.trace, ONNX (run by onnxruntime at another length and batch), low precisions, autocast,
and the way back to torch's classes (int8 dynamic quantization)."""

import io
import warnings

import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, jacrev, jvp, vmap
from torch.fx import GraphModule
from torch.nn.utils.rnn import pack_padded_sequence
from torch.testing import assert_close

import rnnkit
from rnnkit.engine.dispatch import ENGINES

KINDS = {
    "LSTM": ("LSTM", {}),
    "GRU": ("GRU", {}),
    "RNN": ("RNN", {}),
    "RNN-relu": ("RNN", {"nonlinearity": "relu"}),
}
F64 = {"rtol": 1e-9, "atol": 1e-10}


def twins(kind: str, dtype=torch.float64, engine="auto", **kwargs):
    """torch.nn's layer and rnnkit's with the same weights."""
    name, extra = KINDS[kind]
    torch.manual_seed(0)
    theirs = getattr(nn, name)(3, 4, **extra, **kwargs).to(dtype)
    ours = getattr(rnnkit, name)(3, 4, **extra, **kwargs, engine=engine).to(dtype)
    ours.load_state_dict(theirs.state_dict())
    return theirs, ours


def inputs(dtype=torch.float64, steps=5, batch=3, requires_grad=True):
    torch.manual_seed(1)
    x = torch.randn(steps, batch, 3, dtype=dtype)
    return x.requires_grad_(requires_grad)


def gradient_penalty(layer, x):
    """A WGAN-GP-style penalty: ‖∂L/∂x‖², differentiated again w.r.t. the weights."""
    output = layer(x)[0]
    (dx,) = torch.autograd.grad(output.tanh().sum(), x, create_graph=True)
    penalty = dx.pow(2).sum()
    return [penalty, *torch.autograd.grad(penalty, [x, *layer.parameters()])]


# -- second-order gradients -------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_second_order_gradients_equal_torch_nns(kind, engine, dtype):
    theirs, ours = twins(kind, dtype, engine, num_layers=2, bidirectional=True)
    x = inputs(dtype)
    tolerance = F64 if dtype == torch.float64 else {"rtol": 2e-4, "atol": 2e-5}
    assert_close(gradient_penalty(ours, x), gradient_penalty(theirs, x), **tolerance)


LAYOUTS = {
    "plain": {},
    "bidirectional, 2 layers": {"bidirectional": True, "num_layers": 2},
    "no bias": {"bias": False},
}
SLOW_LAYOUTS = ("bidirectional, 2 layers", "no bias")  # seconds each: `make test` runs them


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "layout",
    [
        pytest.param(name, marks=[pytest.mark.slow] if name in SLOW_LAYOUTS else [])
        for name in LAYOUTS
    ],
)
def test_gradgradcheck_through_the_layer(kind, engine, layout):
    """Second derivatives by finite differences, w.r.t. the input and the weights (of the last
    layer's reverse direction only in the stacked case, to keep the check quick)."""
    _, layer = twins(kind, engine=engine, **LAYOUTS[layout])
    names = [name for name, _ in layer.named_parameters()]
    if layer.num_layers > 1:
        names = [name for name in names if name.endswith("l1_reverse")]
    x = inputs(steps=3, batch=2)
    if kind == "RNN-relu":  # away from relu's kink, where finite differences are meaningless
        x = (x.detach() + 2).requires_grad_()

    def function(x, *parameters):
        weights = dict(zip(names, parameters, strict=True))
        return functional_call(layer, weights, (x,), strict=False)[0]

    parameters = [getattr(layer, name).detach().clone().requires_grad_() for name in names]
    assert torch.autograd.gradgradcheck(function, (x, *parameters))


@pytest.mark.parametrize("case", ["packed", "proj_size"])
def test_gradgradcheck_of_packed_and_projected_lstms(case):
    kwargs = {"proj_size": 2} if case == "proj_size" else {}
    _, layer = twins("LSTM", **kwargs)
    x = inputs(steps=4, batch=3)

    def function(x):
        if case == "packed":
            packed = pack_padded_sequence(x, [4, 2, 3], enforce_sorted=False)
            return layer(packed)[0].data
        return layer(x)[0]

    assert torch.autograd.gradgradcheck(function, (x,))


# -- torch.func -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("engine", ENGINES)
def test_per_sample_gradients_equal_a_loop_over_the_batch(kind, engine):
    """vmap(grad(...)) as Opacus and functorch's tutorials compute per-sample gradients."""
    _, layer = twins(kind, engine=engine, batch_first=True)
    parameters = {name: p.detach() for name, p in layer.named_parameters()}
    x = inputs(requires_grad=False).transpose(0, 1)  # (B, T, I)

    def loss(parameters, sample):
        output, _ = functional_call(layer, parameters, (sample.unsqueeze(0),))
        return output.pow(2).sum()

    batched = vmap(grad(loss), in_dims=(None, 0))(parameters, x)
    for row in range(x.shape[0]):
        layer.zero_grad()
        layer(x[row : row + 1])[0].pow(2).sum().backward()
        for name, p in layer.named_parameters():
            assert_close(batched[name][row], p.grad, **F64)


@pytest.mark.parametrize("kind", KINDS)
def test_jacrev_and_jvp_agree_with_autograd(kind):
    _, layer = twins(kind)
    x = inputs(steps=3, batch=2, requires_grad=False)

    def function(x):
        return layer(x)[0]

    jacobian = jacrev(function)(x)  # (T, B, H, T, B, I)
    rows = jacobian.reshape(-1, x.numel())
    x_grad = x.clone().requires_grad_()
    output = function(x_grad).reshape(-1)
    for index in range(0, output.numel(), 7):
        (expected,) = torch.autograd.grad(output[index], x_grad, retain_graph=True)
        assert_close(rows[index], expected.reshape(-1), **F64)
    tangent = torch.randn_like(x)
    _, forward_mode = jvp(function, (x,), (tangent,))
    assert_close(forward_mode.reshape(-1), rows @ tangent.reshape(-1), **F64)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_gradcheck_batched_gradient_check_passes_on_the_bptt(kind):
    """gradcheck's check_batched_grad runs vmap over the hand-written backward."""
    _, layer = twins(kind, engine="bptt")
    x = inputs(steps=3, batch=2)
    assert torch.autograd.gradcheck(lambda x: layer(x)[0], (x,), check_batched_grad=True)


# -- compilers and exporters ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "engine", "loops_in_the_graph"),
    [
        ("GRU", "auto", True),
        ("LSTM", "bptt", True),
        ("LSTM", "auto", False),
        ("RNN", "reference", False),
    ],
)
def test_torch_compile_forward_and_backward_equal_eager(kind, engine, loops_in_the_graph):
    """bptt: its loops are custom operators inside the graph; auto for a float32 LSTM (torch's
    kernel): the layer runs eagerly, a graph break as for torch.nn's layers; reference:
    inductor compiles the equations."""
    torch._dynamo.reset()
    _, layer = twins(kind, torch.float32, engine, num_layers=2)
    x = inputs(torch.float32)
    graphs = torch._dynamo.explain(layer)(x).graphs
    code = "".join(m.code for g in graphs for m in g.modules() if isinstance(m, GraphModule))
    assert ("torch.ops.rnnkit" in code) == loops_in_the_graph
    if engine == "auto" and kind == "LSTM":  # torch's kernel stays out of the graph
        assert "lstm" not in code
    compiled = torch.compile(layer)
    got = [compiled(x)[0]]
    got += torch.autograd.grad(got[0].pow(2).sum(), [x, *layer.parameters()])
    expected = [layer(x)[0]]
    expected += torch.autograd.grad(expected[0].pow(2).sum(), [x, *layer.parameters()])
    assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_torch_export_of_the_bptt_runs_at_any_length_and_batch(kind):
    """engine="bptt": each direction's loop is one custom operator (engine/ops.py) with the
    length as a symbol; torch.nn's layers (and auto, which exports torch's ops) fix it."""
    theirs, ours = twins(kind, torch.float32, "bptt", num_layers=2, bidirectional=True)
    ours.eval()
    steps, batch = torch.export.Dim("steps", min=2, max=512), torch.export.Dim("batch", min=2)
    program = torch.export.export(ours, (inputs(torch.float32, requires_grad=False),),
                                  dynamic_shapes=({0: steps, 1: batch},))  # fmt: skip
    assert any("rnnkit" in str(node.target) for node in program.graph.nodes)
    other = torch.randn(23, 7, 3)
    assert_close(program.module()(other), theirs(other), rtol=1e-5, atol=1e-6)


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float64)


OPERATOR_INPUTS = {
    "lstm_forward": lambda: (randn(5, 3, 16), randn(3, 4), randn(3, 4), randn(16, 4)),
    "lstm_infer": lambda: (randn(5, 3, 16), randn(3, 4), randn(3, 4), randn(16, 4)),
    "gru_forward": lambda: (randn(5, 3, 12), randn(3, 4), randn(12, 4), randn(12)),
    "gru_infer": lambda: (randn(5, 3, 12), randn(3, 4), randn(12, 4), randn(12)),
    "rnn_forward": lambda: (randn(5, 3, 4), randn(3, 4), randn(4, 4), False),
}


@pytest.mark.parametrize("name", OPERATOR_INPUTS)
def test_the_custom_operators_pass_torchs_opcheck(name):
    """Schema, fake (shape) implementation and eager implementation agree (torch.library)."""
    from rnnkit.engine import ops  # noqa: F401  (registers torch.ops.rnnkit)

    operator = getattr(torch.ops.rnnkit, name).default
    checks = ("test_schema", "test_faketensor", "test_aot_dispatch_static")
    torch.library.opcheck(operator, OPERATOR_INPUTS[name](), test_utils=checks)


@pytest.mark.parametrize("kind", KINDS)
def test_torch_export_runs_at_another_batch_size(kind):
    theirs, ours = twins(kind, torch.float32, num_layers=2)
    ours.eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(ours, (inputs(torch.float32, requires_grad=False),),
                                  dynamic_shapes=({1: batch},))  # fmt: skip
    other = torch.randn(5, 7, 3)
    assert_close(program.module()(other), theirs(other), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_jit_trace_passes_its_own_check_at_other_shapes(kind, batch_first):
    _, layer = twins(kind, torch.float32, num_layers=2, bidirectional=True, batch_first=batch_first)
    x = torch.randn(4, 6, 3)
    other = torch.randn(3, 9, 3)
    traced = torch.jit.trace(layer, (x,), check_inputs=[(other,)])
    assert_close(traced(other), layer(other))


def onnx_session(layer, x, dynamo: bool, twin):
    onnxruntime = pytest.importorskip("onnxruntime")
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            batch = torch.export.Dim("batch", min=1, max=64)
            # The first dynamo export of a GRU in a process fixes the batch size, for
            # torch.nn.GRU too (torch 2.13, onnxscript 0.7); from the second on it stays
            # dynamic. So torch.nn's twin goes first.
            torch.onnx.export(twin, (x,), dynamic_shapes=({1: batch},), dynamo=True)
            program = torch.onnx.export(layer, (x,), dynamic_shapes=({1: batch},), dynamo=True)
            program.save(buffer)
        else:
            axes = {"x": {0: "steps", 1: "batch"}}
            torch.onnx.export(layer, (x,), buffer, input_names=["x"], dynamic_axes=axes,
                              dynamo=False)  # fmt: skip
    return onnxruntime.InferenceSession(buffer.getvalue())


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dynamo", [False, True])
def test_onnx_export_runs_in_onnxruntime_at_another_length_and_batch(kind, dynamo):
    """The TorchScript exporter keeps length and batch dynamic (one ONNX LSTM/GRU/RNN node);
    the dynamo exporter keeps the batch dynamic and, as for torch.nn's layers, fixes the
    length at the traced one."""
    theirs, ours = twins(kind, torch.float32, num_layers=2, bidirectional=True)
    ours.eval()
    session = onnx_session(ours, inputs(torch.float32, requires_grad=False), dynamo, theirs)
    other = torch.randn(5 if dynamo else 11, 7, 3)
    (got, *_) = session.run(None, {session.get_inputs()[0].name: other.numpy()})
    assert_close(torch.from_numpy(got), theirs(other)[0], rtol=1e-4, atol=1e-5)


def test_jit_script_of_a_layer_fails_at_once_naming_what_works():
    with pytest.raises(RuntimeError, match=r"torch\.compile.*torch\.export") as error:
        torch.jit.script(rnnkit.LSTM(3, 4))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_jit_script_of_a_cell_shares_the_cells_parameters(kind):
    cell = getattr(rnnkit, kind)(3, 4)
    scripted = torch.jit.script(cell)
    x = torch.randn(2, 3)
    assert_close(scripted(x), cell(x))
    assert scripted.weight_hh.data_ptr() == cell.weight_hh.data_ptr()


# -- precisions -------------------------------------------------------------------------------


def relative_error(got, reference):
    return ((got.double() - reference).norm() / reference.norm()).item()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_layers_are_as_accurate_as_torch_nns(kind, dtype):
    """Forward and input gradient in bf16/fp16, each compared with the float64 result: rnnkit's
    error is at most a small multiple of torch.nn's in the same precision."""
    theirs, ours = twins(kind, num_layers=2)
    x = inputs()
    reference = [theirs(x)[0]]
    reference += torch.autograd.grad(reference[0].pow(2).sum(), x)
    errors = {}
    for name, layer in (("theirs", theirs), ("ours", ours)):
        low = layer.to(dtype)
        x_low = x.detach().to(dtype).requires_grad_()
        result = [low(x_low)[0]]
        result += torch.autograd.grad(result[0].float().pow(2).sum(), x_low)
        assert result[0].dtype == dtype
        errors[name] = [relative_error(g, r) for g, r in zip(result, reference, strict=True)]
    for ours_error, theirs_error in zip(errors["ours"], errors["theirs"], strict=True):
        assert ours_error <= 3 * theirs_error + 1e-3, errors


@pytest.mark.parametrize("kind", KINDS)
def test_autocast_gives_torch_nns_dtypes_and_values(kind):
    theirs, ours = twins(kind, torch.float32, num_layers=2)
    x = inputs(torch.float32)
    with torch.autocast("cpu", torch.bfloat16):
        got = ours(x)
        try:
            expected = theirs(x)
        except RuntimeError as error:  # oneDNN's bfloat16 LSTM needs AVX-512 BF16 or AMX
            assert "primitive" in str(error), error
            expected = None
    if expected is None:  # rnnkit ran the cell's step: products in bfloat16, as autocast does
        assert_close(got[0].float(), theirs(x)[0], rtol=2e-2, atol=2e-2)
        got[0].float().sum().backward()
        return
    for e, g in zip(
        torch.utils._pytree.tree_leaves(expected), torch.utils._pytree.tree_leaves(got), strict=True
    ):
        assert g.dtype == e.dtype
        assert_close(g, e, rtol=2e-2, atol=2e-2)
    got[0].float().sum().backward()  # and it trains


# -- leaving rnnkit ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"])
def test_to_torch_and_back_keeps_every_weight(kind):
    ours = getattr(rnnkit, kind)(3, 4, **({} if kind.endswith("Cell") else {"num_layers": 2}))
    theirs = ours.to_torch()
    assert type(theirs) is getattr(nn, kind)
    back = getattr(rnnkit, kind).from_torch(theirs)
    for a, b, c in zip(ours.state_dict().values(), theirs.state_dict().values(),
                       back.state_dict().values(), strict=True):  # fmt: skip
        assert torch.equal(a, b) and torch.equal(a, c)
    x = torch.randn(5, 2, 3) if not kind.endswith("Cell") else torch.randn(2, 3)
    assert_close(back(x), theirs(x))
    with pytest.raises(TypeError, match=r"expects a torch\.nn"):
        rnnkit.LSTM.from_torch(nn.GRU(3, 4))


def test_quantize_dynamic_gives_what_torch_gives_for_the_twin():
    torch.manual_seed(0)
    model = nn.Sequential(rnnkit.LSTM(3, 8))
    twin = nn.Sequential(model[0].to_torch())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = rnnkit.quantize_dynamic(model)
        theirs = torch.ao.quantization.quantize_dynamic(twin, {nn.LSTM}, dtype=torch.qint8)
    assert isinstance(ours[0], torch.ao.nn.quantized.dynamic.LSTM)
    x = torch.randn(5, 2, 3)
    assert_close(ours(x), theirs(x))
    assert isinstance(model[0], rnnkit.LSTM)  # the original is left as it was


# -- CUDA -------------------------------------------------------------------------------------

needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA GPU here: these run on a machine with one (engine/dispatch.py says what "
    "runs on CUDA: cuDNN through the fused engine, the BPTT's Python loops on request)",
)


@needs_cuda
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_on_cuda_values_and_second_order_gradients_equal_torch_nns(kind, engine, dtype):
    """Against torch.nn on the CPU in the same dtype. Where torch.nn fails on CUDA too (cuDNN
    has no double backward), rnnkit's fused engine (which is cuDNN) may fail the same way."""
    theirs, ours = twins(kind, dtype, engine, num_layers=2, bidirectional=True)
    x = inputs(dtype)
    expected = gradient_penalty(theirs, x)
    x_cuda = x.detach().cuda().requires_grad_()
    try:
        got = gradient_penalty(ours.cuda(), x_cuda)
    except RuntimeError as error:
        if engine != "fused":
            raise
        with pytest.raises(type(error)) as their_error:  # torch.nn fails the same way on CUDA
            gradient_penalty(theirs.cuda(), x_cuda)
        pytest.xfail(f"cuDNN has no double backward, for torch.nn too: {their_error.value}")
    tolerance = F64 if dtype == torch.float64 else {"rtol": 1e-3, "atol": 1e-4}
    assert_close([g.cpu() for g in got], expected, **tolerance)


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cells_under_vmap_and_grad_equal_a_loop(kind):
    torch.manual_seed(0)
    cell = getattr(rnnkit, kind)(3, 4).double()
    parameters = {name: p.detach() for name, p in cell.named_parameters()}
    x = torch.randn(5, 3, dtype=torch.double)

    def loss(parameters, sample):
        output = functional_call(cell, parameters, (sample,))
        return torch.utils._pytree.tree_leaves(output)[0].pow(2).sum()

    batched = vmap(grad(loss), in_dims=(None, 0))(parameters, x)
    for row in range(x.shape[0]):
        cell.zero_grad()
        loss(dict(cell.named_parameters()), x[row]).backward()
        for name, p in cell.named_parameters():
            assert_close(batched[name][row], p.grad, **F64)
