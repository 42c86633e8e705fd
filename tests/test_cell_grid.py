"""Every cell through every layer feature: the eleven shipped cells and one defined here, as a
user would, each held to its own step-by-step definition (the cell's step in a plain loop)."""

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_sequence, unpack_sequence
from torch.testing import assert_close

import rnnkit
from rnnkit.cells import BUILT_IN, CELLS, Cell, Parameters, Weight, cell_from_spec, check_cell
from rnnkit.nn.cells import RecurrentCell
from rnnkit.nn.layers import Recurrent

σ = torch.sigmoid


class LeakyTanhRNN(Cell):
    """A user's cell: a learned leak per unit between the old state and a tanh candidate,
    h_t = λ ⊙ h_{t-1} + (1 − λ) ⊙ tanh(W x_t + U h_{t-1} + b),  λ = σ(a)."""

    gates = ("n",)
    parameters = {"leak": Weight(("H",), "zeros")}  # noqa: RUF012

    def step(self, x, hh, state, p):
        (h,) = state
        n = torch.tanh(x + hh)
        keep = σ(p.leak)  # (H,)
        return keep * h + (1 - keep) * n, {"n": n}


ALL_CELLS = [*CELLS, "test_file_cell"]


def definition(name: str) -> Cell:
    return check_cell(LeakyTanhRNN()) if name == "test_file_cell" else cell_from_spec(name)


def layer_of(name, **kwargs) -> Recurrent:
    torch.manual_seed(0)
    layer = Recurrent(definition(name), 3, 4, **kwargs).double()
    with torch.no_grad():  # move every parameter off its initial value (LayerNorm gains of 1)
        for parameter in layer.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return layer


def by_definition(layer: Recurrent, x: torch.Tensor, state=None):
    """The oracle: x (T, B, I) through the cell's step in a plain loop, layer by layer and
    direction by direction; returns the output (T, B, D·H) and the final states."""
    cell, L, D = layer.cell, layer.num_layers, layer.num_directions
    T, B, _ = x.shape
    sizes = cell.state_sizes(layer.hidden_size, 0)
    if state is None:
        state = tuple(x.new_zeros(L * D, B, size) for size in sizes)
    finals = [[] for _ in sizes]
    layer_input = x
    for index, per_direction in enumerate(layer._direction_weights()):
        outputs = []
        for direction, w in enumerate(per_direction):
            s = tuple(part[index * D + direction] for part in state)
            steps = range(T - 1, -1, -1) if direction else range(T)
            out = [None] * T
            for t in steps:
                x_side = F.linear(layer_input[t], w.w_ih, w.b_ih)
                hh = None if w.w_hh is None else F.linear(s[0], w.w_hh, w.b_hh)
                s, _ = cell.run_step(x_side, hh, s, Parameters(w.extra))
                out[t] = s[0]
            outputs.append(torch.stack(out))
            for k, part in enumerate(s):
                finals[k].append(part)
        layer_input = torch.cat(outputs, dim=-1)
    return layer_input, tuple(torch.stack(f) for f in finals)


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("name", ALL_CELLS)
@pytest.mark.parametrize("num_layers", [1, pytest.param(3, marks=pytest.mark.slow)])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_layers_equal_the_cells_step_by_step(name, num_layers, bidirectional, batch_first):
    layer = layer_of(
        name, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first
    )
    x = torch.randn(5, 2, 3, dtype=torch.double)  # (T, B, I)
    output, state = layer(x.transpose(0, 1) if batch_first else x)
    if batch_first:
        output = output.transpose(0, 1)
    expected_output, expected_state = by_definition(layer, x)
    assert_close(output, expected_output)
    assert_close(as_tuple(state), expected_state)


@pytest.mark.parametrize("name", ALL_CELLS)
def test_dropout_between_layers_acts_in_training_only(name):
    layer = layer_of(name, num_layers=3, dropout=0.5)
    x = torch.randn(4, 2, 3, dtype=torch.double)
    torch.manual_seed(1)
    first = layer(x)[0]
    torch.manual_seed(1)
    assert_close(layer(x)[0], first)  # the same seed, the same masks
    torch.manual_seed(2)
    assert not torch.allclose(layer(x)[0], first)
    layer.eval()
    assert_close(layer(x)[0], by_definition(layer, x)[0])


@pytest.mark.parametrize("name", ALL_CELLS)
def test_variational_and_weight_dropout_run_for_every_cell(name):
    layer = layer_of(name, num_layers=2, dropout=0.3)
    layer.variational_dropout = True
    layer.weight_dropout = 0.2
    x = torch.randn(4, 2, 3, dtype=torch.double, requires_grad=True)
    output, _ = layer(x)
    output.sum().backward()
    assert torch.isfinite(x.grad).all()
    layer.eval()  # both act in training only
    assert_close(layer(x)[0], by_definition(layer, x)[0])


@pytest.mark.parametrize("name", ALL_CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_packed_batch_equals_each_sequence_alone(name, bidirectional):
    layer = layer_of(name, num_layers=2, bidirectional=bidirectional)
    sequences = [torch.randn(n, 3, dtype=torch.double) for n in (3, 5, 1, 4)]  # unsorted
    output, state = layer(pack_sequence(sequences, enforce_sorted=False))
    state = as_tuple(state)
    for index, (sequence, out) in enumerate(zip(sequences, unpack_sequence(output), strict=True)):
        alone, alone_state = layer(sequence)  # unbatched (T, I)
        assert_close(out, alone)
        for part, alone_part in zip(state, as_tuple(alone_state), strict=True):
            assert_close(part[:, index], alone_part)


@pytest.mark.parametrize("name", ALL_CELLS)
def test_the_state_carries_across_calls(name):
    layer = layer_of(name, num_layers=2)
    x = torch.randn(6, 2, 3, dtype=torch.double)
    whole, whole_state = layer(x)
    first, state = layer(x[:4])
    second, second_state = layer(x[4:], state)
    assert_close(torch.cat([first, second]), whole)
    assert_close(as_tuple(second_state), as_tuple(whole_state))


@pytest.mark.parametrize("name", ALL_CELLS)
def test_the_trace_names_the_cells_own_gates_and_states(name):
    layer = layer_of(name, num_layers=2, bidirectional=True)
    x = torch.randn(5, 2, 3, dtype=torch.double)
    trace = layer.trace(x)
    cell = layer.cell
    assert tuple(trace.gates) == cell.gate_names
    assert tuple(trace.states) == cell.states[1:]
    for value in [trace.hidden, *trace.gates.values(), *trace.states.values()]:
        assert value.shape == (2, 2, 5, 2, 4)  # (L, D, T, B, H)
    assert_close(trace.hidden[-1].permute(1, 2, 0, 3).reshape(5, 2, 8), trace.output)
    assert (trace.cell is not None) == ("c" in cell.states)
    # probe_gradients: ∂L/∂h_t for every step
    probed = layer.trace(x, probe_gradients=True)
    probed.output.sum().backward()
    assert probed.hidden_grad.shape == (2, 2, 5, 2, 4)


@pytest.mark.parametrize("name", ALL_CELLS)
@pytest.mark.parametrize(
    "check",
    [
        torch.autograd.gradcheck,
        pytest.param(torch.autograd.gradgradcheck, marks=pytest.mark.slow),  # 1-76 s a cell
    ],
    ids=["gradcheck", "gradgradcheck"],
)
def test_exact_first_and_second_order_gradients_in_float64(name, check):
    torch.manual_seed(0)
    layer = Recurrent(definition(name), 2, 2, bidirectional=True).double()
    x = torch.randn(3, 2, 2, dtype=torch.double, requires_grad=True)
    state = tuple(
        torch.randn(2, 2, size, dtype=torch.double, requires_grad=True)
        for size in layer.cell.state_sizes(2, 0)
    )
    parameters = list(layer.parameters())

    def run(x, *tensors):
        states, weights = tensors[: len(state)], tensors[len(state) :]
        by_name = dict(zip(layer._flat_weights_names, weights, strict=True))
        output, final = torch.func.functional_call(
            layer, by_name, (x, states if len(states) > 1 else states[0])
        )
        return output, *as_tuple(final)

    assert check(run, (x, *state, *parameters))


@pytest.mark.parametrize("name", ["layernorm_lstm", "mingru", "test_file_cell"])
def test_torch_func_vmap_of_grad(name):
    layer = layer_of(name)
    xs = torch.randn(3, 4, 1, 3, dtype=torch.double)  # 3 problems of (T, B, I)

    def loss(x):
        return layer(x)[0].pow(2).sum()

    batched = torch.func.vmap(torch.func.grad(loss))(xs)
    for k in range(3):
        x = xs[k].clone().requires_grad_()
        loss(x).backward()
        assert_close(batched[k], x.grad)


@pytest.mark.parametrize("name", ALL_CELLS)
def test_the_one_step_module_equals_the_layer(name):
    torch.manual_seed(0)
    step = RecurrentCell(definition(name), 3, 4).double()
    layer = Recurrent(definition(name), 3, 4).double()
    layer.load_state_dict({f"{key}_l0": value for key, value in step.state_dict().items()})
    x = torch.randn(4, 2, 3, dtype=torch.double)
    state = None
    for t in range(4):
        state = step(x[t], state)
    assert_close(as_tuple(state), tuple(s[0] for s in as_tuple(layer(x)[1])))


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_CELLS)
def test_compile_and_export_give_the_eager_results(name):
    layer = layer_of(name).float().eval()
    x = torch.randn(4, 2, 3)
    expected = layer(x)[0]
    torch._dynamo.reset()
    assert_close(torch.compile(layer)(x)[0], expected)
    exported = torch.export.export(layer, (x,))
    assert_close(exported.module()(x)[0], expected)


OWN_LOOPS = [name for name in ALL_CELLS if name not in BUILT_IN]


@pytest.mark.slow
@pytest.mark.parametrize("name", OWN_LOOPS)
def test_the_loop_is_one_operator_at_every_length_under_compile_and_export(name):
    # (The built-in cells' loops are custom operators of their own: tests/test_compile.py.)
    layer = layer_of(name, num_layers=2, bidirectional=True)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = torch.compile(layer, dynamic=True)
    for steps in (5, 9, 3):  # (torch specialises a size of 0 or 1: T = 1 or 2 is a new graph)
        x = torch.randn(steps, 2, 3, dtype=torch.float64, requires_grad=True)
        got, expected = compiled(x)[0], layer(x)[0]
        assert_close(got, expected)
        assert_close(torch.autograd.grad(got.square().sum(), x)[0],
                     torch.autograd.grad(expected.square().sum(), x)[0])  # fmt: skip
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1  # no unrolled loop
    exported = torch.export.export(
        layer, (torch.randn(5, 2, 3, dtype=torch.float64),),
        dynamic_shapes=({0: torch.export.Dim("T")},),
    )  # fmt: skip
    x = torch.randn(17, 2, 3, dtype=torch.float64)
    assert_close(exported.module()(x)[0], layer(x)[0])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["layernorm_lstm", "sru", "mingru", "test_file_cell"])
def test_onnx_export_runs_in_onnxruntime(name, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    layer = layer_of(name).float().eval()
    x = torch.randn(4, 2, 3)
    path = tmp_path / "cell.onnx"
    torch.onnx.export(layer, (x,), path, input_names=["x"], dynamo=True)
    session = onnxruntime.InferenceSession(str(path))
    (output, *_) = session.run(None, {"x": x.numpy()})
    assert_close(torch.from_numpy(output), layer(x)[0], rtol=1e-4, atol=1e-5)


# -- bad definitions: one clear error at construction ------------------------------------------


class TwiceNamed(Cell):
    gates = ("z", "z")

    def step(self, x, hh, state, p):
        return state, {}


class WrongStateCount(Cell):
    gates = ("n",)
    states = ("h", "c")

    def step(self, x, hh, state, p):
        return state[0], {}


class WrongShape(Cell):
    gates = ("a", "b")

    def step(self, x, hh, state, p):
        return x + hh, {}  # (B, 2H), not (B, H)


class BrokenStep(Cell):
    gates = ("n",)

    def step(self, x, hh, state, p):
        return p.missing, {}


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (TwiceNamed, "the gates name 'z' is used twice"),
        (WrongStateCount, "returned 1 state tensor(s) but states is ('h', 'c')"),
        (WrongShape, "returned state 'h' of shape (2, 6), expected (batch, hidden_size)"),
        (BrokenStep, "step(x, hh, state, p) failed"),
    ],
)
def test_a_bad_definition_is_one_clear_error_at_construction(cell, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Recurrent(cell, 3, 4)


def test_a_subclass_of_a_built_in_cell_runs_its_own_step():
    """A user's LSTM variant must not be sent to the LSTM's kernels."""

    class HalfForgetLSTM(rnnkit.cells.lstm.LSTM):
        def step(self, x, hh, state, p):
            (h, c), gates = super().step(x, hh, state, p)
            return (h, 0.5 * c), gates

    layer = Recurrent(HalfForgetLSTM(), 3, 4).double()
    x = torch.randn(5, 2, 3, dtype=torch.double)
    assert_close(layer(x)[0], by_definition(layer, x)[0])
    plain = Recurrent("lstm", 3, 4).double()
    plain.load_state_dict(layer.state_dict())
    assert not torch.allclose(plain(x)[0], layer(x)[0])
