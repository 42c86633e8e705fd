"""The scans of a linear cell (engine/scan.py) against the step-by-step loop they replace."""

import pytest
import torch
from torch.nn.utils.rnn import pack_sequence, unpack_sequence
from torch.testing import assert_close

from rnnkit.cells import CELLS, Cell, LinearCell
from rnnkit.engine import compiled, dispatch, scan
from rnnkit.engine.scan import linear_scan, parallel_scan
from rnnkit.nn.layers import Recurrent


def step_loop(a, b, h0):
    h, out = h0, []
    for t in range(a.shape[0]):
        h = a[t] * h + b[t]
        out.append(h)
    return torch.stack(out)


def coefficients(steps, dtype, seed=0, batch=8, hidden=256):
    """minGRU's a = 1 − z and b = z ⊙ h̃, with gates from near-closed to saturated."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.sigmoid(3 * torch.randn(steps, batch, hidden, generator=generator, dtype=dtype))
    candidate = torch.randn(steps, batch, hidden, generator=generator, dtype=dtype)
    h0 = torch.randn(batch, hidden, generator=generator, dtype=dtype)  # not zero: minGRU-pytorch#9
    return 1 - z, z * candidate, h0


def relative(x, reference):
    return ((x.double() - reference.double()).abs().max() / reference.abs().max()).item()


@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float32, 1e-4), (torch.float64, 1e-10)])
def test_both_scans_equal_the_step_loop_at_4096_steps_from_a_nonzero_state(dtype, tolerance):
    a, b, h0 = coefficients(4096, dtype)
    expected = step_loop(a, b, h0)
    assert relative(linear_scan(a, b, h0), expected) < tolerance
    assert relative(parallel_scan(a, b, h0), expected) < tolerance
    if dtype == torch.float32:
        assert relative(parallel_scan(a, b, h0, torch.float64), expected) < tolerance


def test_a_saturated_gate_resets_the_state_as_the_loop_does():
    # σ(20) is 1.0 in float32: a = 0 exactly, where a log-space scan would take log 0
    a, b, h0 = coefficients(50, torch.float32, batch=2, hidden=3)
    a[10] = 0.0
    expected = step_loop(a, b, h0)
    assert_close(linear_scan(a, b, h0), expected)
    assert_close(parallel_scan(a, b, h0), expected)
    assert_close(expected[10], b[10])


@pytest.mark.parametrize("scan", [linear_scan, parallel_scan])
def test_exact_first_and_second_order_gradients(scan):
    a, b, h0 = (t.requires_grad_() for t in coefficients(9, torch.float64, batch=2, hidden=3))
    assert torch.autograd.gradcheck(scan, (a, b, h0))
    assert torch.autograd.gradgradcheck(scan, (a, b, h0))


def test_the_scan_operator_under_vmap():
    a, b, h0 = coefficients(7, torch.float64, batch=2, hidden=3)
    many = torch.rand(5, *a.shape, dtype=torch.float64)
    assert_close(torch.vmap(linear_scan, in_dims=(0, None, None))(many, b, h0),
                 torch.stack([step_loop(m, b, h0) for m in many]))  # fmt: skip


def test_the_scan_operator_with_batched_gradients():
    # autograd.grad(is_grads_batched=True) vmaps the backward operator: whole Jacobians, and
    # the Jacobian of a gradient, against the step loop's
    a, b, h0 = (t.requires_grad_() for t in coefficients(6, torch.float64, batch=2, hidden=3))
    jacobian = torch.autograd.functional.jacobian
    for vectorize in (False, True):
        assert_close(jacobian(linear_scan, (a, b, h0), vectorize=vectorize),
                     jacobian(step_loop, (a, b, h0)))  # fmt: skip

    def slope(f):
        (grad,) = torch.autograd.grad((f(a, b, h0) ** 2).sum(), a, create_graph=True)
        return grad

    probes = torch.randn(4, *a.shape, dtype=torch.float64)
    mine = torch.autograd.grad(slope(linear_scan), (a, b, h0), probes, is_grads_batched=True)
    reference = torch.autograd.grad(slope(step_loop), (a, b, h0), probes, is_grads_batched=True)
    assert_close(mine, reference)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_compiled_scan_loops_equal_their_python_twins(dtype):
    loops = compiled.loops()
    if loops is None:
        pytest.skip("the C++ loops are not built here (RNNKIT_KERNELS=python or no compiler)")
    a, b, h0 = coefficients(300, dtype, batch=3, hidden=70)  # features not a multiple of 8
    h = loops.linear_scan_forward(a, b, h0)
    assert_close(h, scan.linear_scan_forward(a, b, h0))
    grad = torch.randn_like(h)
    for mine, twin in zip(loops.linear_scan_backward(a, h0, h, grad),
                          scan.linear_scan_backward(a, h0, h, grad), strict=True):  # fmt: skip
        assert_close(mine, twin)


def test_the_python_scan_loops_give_exact_gradients(monkeypatch):
    # the loops that run where the C++ ones did not build (and for other dtypes and devices)
    monkeypatch.setattr(scan, "_loops", lambda a: scan)
    a, b, h0 = (t.requires_grad_() for t in coefficients(9, torch.float64, batch=2, hidden=3))
    assert torch.autograd.gradcheck(linear_scan, (a, b, h0))
    assert torch.autograd.gradgradcheck(linear_scan, (a, b, h0))


def test_the_scan_takes_an_h0_that_broadcasts():
    a, b, h0 = (t.requires_grad_() for t in coefficients(5, torch.float64, batch=2, hidden=3))
    h0 = h0[:1].detach().requires_grad_()  # (1, H) for a batch of 2
    assert_close(linear_scan(a, b, h0), step_loop(a, b, h0))
    assert torch.autograd.gradcheck(linear_scan, (a, b, h0))
    assert torch.autograd.gradgradcheck(linear_scan, (a, b, h0))


class StepMinGRU(Cell):
    """minGRU's coefficients written as an ordinary step: the loop the scan must equal."""

    gates = ("z", "n")
    hidden_gates = ()

    def step(self, x, hh, state, p):
        a, b, gates = CELLS["mingru"]().coefficients(x, p)
        return a * state[0] + b, gates


def twins(dtype=torch.float64, **kwargs):
    torch.manual_seed(0)
    scanned = Recurrent(CELLS["mingru"], 5, 6, **kwargs).to(dtype)
    stepped = Recurrent(StepMinGRU(), 5, 6, **kwargs).to(dtype)
    stepped.load_state_dict(scanned.state_dict())
    return scanned, stepped


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("loop", ["scan", "parallel_scan"])
def test_a_linear_layer_equals_its_step_loop_padded_and_packed(
    monkeypatch, bidirectional, loop, dtype
):
    route = dispatch.route
    seen = []

    def forced(requested, call):
        chosen = route(requested, call)
        if chosen.loop == "scan":
            chosen = dispatch.Route(chosen.engine, loop, chosen.per_layer, chosen.trace)
        seen.append(chosen.loop)
        return chosen

    monkeypatch.setattr(dispatch, "route", forced)
    scanned, stepped = twins(dtype, num_layers=2, bidirectional=bidirectional)
    x = torch.randn(11, 3, 5, dtype=dtype, requires_grad=True)
    h0 = torch.randn(2 * (1 + bidirectional), 3, 6, dtype=dtype)
    (y, h), (y_ref, h_ref) = scanned(x, h0), stepped(x, h0)
    assert_close(y, y_ref)
    assert_close(h, h_ref)
    assert_close(torch.autograd.grad(y.sum(), x)[0], torch.autograd.grad(y_ref.sum(), x)[0])
    sequences = [torch.randn(n, 5, dtype=dtype) for n in (4, 9, 1, 6)]
    packed = pack_sequence(sequences, enforce_sorted=False)
    h0 = h0[:, :1].expand(-1, 4, -1).contiguous()
    (y, h), (y_ref, h_ref) = scanned(packed, h0), stepped(packed, h0)
    for got, expected in zip(unpack_sequence(y), unpack_sequence(y_ref), strict=True):
        assert_close(got, expected)
    assert_close(h, h_ref)
    assert loop in seen


@pytest.mark.slow
def test_a_linear_cell_under_compile_holds_the_scan_in_the_graph_at_any_length():
    scanned, _ = twins()
    torch._dynamo.reset()
    compiled = torch.compile(scanned, dynamic=True)
    for steps in (8, 40, 3):
        x = torch.randn(steps, 2, 5, dtype=torch.float64)
        assert_close(compiled(x)[0], scanned(x)[0])
    exported = torch.export.export(
        scanned, (torch.randn(8, 2, 5, dtype=torch.float64),),
        dynamic_shapes=({0: torch.export.Dim("T")},),
    )  # fmt: skip
    targets = [node.target for node in exported.graph.nodes if node.op == "call_function"]
    assert torch.ops.rnnkit.linear_scan.default in targets
    x = torch.randn(30, 2, 5, dtype=torch.float64)
    assert_close(exported.module()(x)[0], scanned(x)[0])


def test_a_linear_cell_declares_coefficients_not_a_step():
    with pytest.raises(TypeError, match="coefficients"):

        class Both(LinearCell):
            gates = ("z",)

            def step(self, x, hh, state, p):
                return state, {}


def test_a_linear_cell_with_two_states_is_refused():
    class TwoStates(LinearCell):
        gates = ("z",)
        states = ("h", "c")

        def coefficients(self, x, p):
            return x, x, {}

    with pytest.raises(ValueError, match="one state h"):
        Recurrent(TwoStates(), 3, 4)


def test_the_scan_of_no_steps():
    a, b, h0 = (t.requires_grad_() for t in coefficients(0, torch.float64, batch=2, hidden=3))
    h = linear_scan(a, b, h0)
    assert h.shape == (0, 2, 3)
    (grad_h0,) = torch.autograd.grad(h.sum() + h0.sum(), h0)
    assert_close(grad_h0, torch.ones_like(h0))  # only the direct term: no step carries h0
