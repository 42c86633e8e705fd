"""An elementwise cell's step and its derived backward run as two programs per step
(engine/derive.py, engine/derived_loop.py, kernels/derived_steps.cpp): the path every cell
without registered loops takes over equal lengths on the CPU when its step is elementwise.
It must give the cell's own step's values and every gradient (inputs, weights, the cell's own
parameters, initial states), first order from the derived programs and second order by
recomputing with the step; and a step it cannot derive must keep the traced loop, still right."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_sequence
from torch.testing import assert_close

from helpers import python_steps, skip_without_a_compiler, stepped_and_read
from rnnkit.cells import CELLS, Cell, Weight
from rnnkit.cells.lstm import LSTM
from rnnkit.engine.compiled import kernel_choice
from rnnkit.engine.registered import kernel_of
from rnnkit.engine.traced import DERIVED, made_for
from rnnkit.nn.layers import Recurrent


@pytest.fixture(autouse=True)
def the_cpp_steps():
    if kernel_choice() == "python":
        pytest.skip("RNNKIT_KERNELS=python: every cell runs its Python step, nothing is derived")
    skip_without_a_compiler()


class UsersLSTM(LSTM):
    """The LSTM's equations as a user's cell (a subclass runs its own step)."""


class EveryOperation(Cell):
    """A made-up cell that uses every operation the programs hold: - / exp neg clamp silu
    sqrt log and powers, a number times a tensor, a one-element parameter, a slice and a cat
    of planes, a state besides h that the step passes through a relu, and a parameter of two
    planes (the layer norm: the LayerNorm LSTM)."""

    gates = ("a", "b", "c")
    hidden_gates = ("a", "b")
    states = ("h", "m")
    parameters = {  # noqa: RUF012
        "scale": Weight((1,), "ones"),
        "gain": Weight(("2H",), "uniform"),
    }

    def step(self, x, hh, state, p):
        h, m = state
        xa, xb, xc = x.chunk(3, dim=-1)
        both = hh * p.gain  # (B, 2H) times (2H,)
        ha, hb = both[:, : both.shape[-1] // 2], both[:, both.shape[-1] // 2 :]
        a = torch.sigmoid(xa + ha)
        b = torch.tanh(xb - hb) / (2.0 + torch.exp(-(a * a)))
        c = (xc * p.scale).clamp(-0.5, 0.7)
        m = torch.relu(0.5 * m + c - b)
        joined = torch.cat([a, m], dim=-1)
        smooth = F.silu(xc) * torch.sqrt(1 + a.pow(2)) - torch.log(1 + a) + b.pow(3) * a.pow(0.5)
        h = joined[:, : h.shape[-1]] * torch.tanh(m) + (1 - a) * h + 0.1 * smooth
        return (h, m), {"a": a, "b": b}


class HandsItsStateOn(Cell):
    """b_t = tanh(a_{t-1}) and a_t = b_{t-1}: the gradient of b_{t-1} is a's carried gradient
    itself, which the same program also overwrites with a's new one (every value must be read
    before any store)."""

    gates = ("h",)
    states = ("h", "a", "b")

    def step(self, x, hh, state, p):
        _, a, b = state  # h enters through hh only
        return (torch.tanh(x + hh + a), b, torch.tanh(a)), {}


DERIVABLE = [name for name in CELLS if kernel_of(CELLS[name]()) is None and not CELLS[name].linear]
CELLS_HERE = {**{name: CELLS[name] for name in DERIVABLE}, "users_lstm": UsersLSTM,
              "every_operation": EveryOperation, "hands_its_state_on": HandsItsStateOn}  # fmt: skip


def run(layer, x, h0, python: bool):
    """Output, final state and the gradients of x, h0 and every parameter, through the derived
    loops or (python) the cell's own step."""
    with python_steps(python):
        output, state = layer(x, h0)
        state = state if isinstance(state, tuple) else (state,)
        loss = (output * torch.linspace(-1, 1, output.shape[-1], dtype=x.dtype)).pow(2).sum()
        loss = loss + sum(s.sin().sum() for s in state)
        inputs = [x, *(h0 if isinstance(h0, tuple) else (h0,)), *layer.parameters()]
        found = torch.autograd.grad(loss, inputs, allow_unused=True)  # SRU does not read h0
        return (
            output,
            state,
            [torch.zeros_like(t) if g is None else g for g, t in zip(found, inputs, strict=True)],
        )


def batch(layer, steps, size, dtype, seed=1):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, size, layer.input_size, generator=generator, dtype=dtype)
    D = 2 if layer.bidirectional else 1
    shape = (layer.num_layers * D, size, layer.hidden_size)
    states = tuple(
        (0.5 * torch.randn(*shape, generator=generator, dtype=dtype)).requires_grad_()
        for _ in layer.cell.states
    )
    return x.requires_grad_(), states if len(states) > 1 else states[0]


def grad_fn_names(tensor) -> set[str]:
    """The names of every autograd node that made ``tensor``."""
    seen, stack, names = set(), [tensor.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names


@pytest.mark.parametrize("name", CELLS_HERE)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_every_elementwise_cell_takes_the_derived_loops_and_gives_its_steps_results(name, dtype):
    torch.manual_seed(0)
    # hidden 7: not a multiple of the programs' block of features, nor of a vector's width (and
    # the layer norm's programs run whole rows)
    layer = Recurrent(CELLS_HERE[name](), 4, 7, num_layers=2, bidirectional=True).to(dtype)
    x, h0 = batch(layer, 6, 3, dtype)
    derived = run(layer, x, h0, python=False)
    assert "DerivedSequenceBackward" in grad_fn_names(derived[0]), f"{name} was not derived"
    assert all(p is not None for p in made_for(layer.cell, DERIVED).values())
    reference = run(layer, x, h0, python=True)
    tolerance = {"atol": 1e-12, "rtol": 1e-10} if dtype == torch.float64 else {}
    for ours, theirs in zip(
        [derived[0], *derived[1], *derived[2]],
        [reference[0], *reference[1], *reference[2]],
        strict=True,
    ):
        assert_close(ours, theirs, **tolerance)


def packed(layer, dtype, lengths=(6, 4, 4, 1), seed=2):
    """The sequences of a packed batch of unequal lengths (batch sizes 4, 3, 3, 3, 1, 1) and
    initial states."""
    generator = torch.Generator().manual_seed(seed)
    sequences = [torch.randn(n, layer.input_size, generator=generator, dtype=dtype)
                 for n in lengths]  # fmt: skip
    for s in sequences:
        s.requires_grad_()
    D = 2 if layer.bidirectional else 1
    shape = (layer.num_layers * D, len(lengths), layer.hidden_size)
    states = tuple(
        (0.5 * torch.randn(*shape, generator=generator, dtype=dtype)).requires_grad_()
        for _ in layer.cell.states
    )
    return sequences, states if len(states) > 1 else states[0]


@pytest.mark.parametrize("name", CELLS_HERE)
def test_a_packed_batch_of_unequal_lengths_takes_the_derived_loops_too(name):
    torch.manual_seed(0)
    layer = Recurrent(CELLS_HERE[name](), 3, 5, num_layers=2, bidirectional=True).double()
    sequences, h0 = packed(layer, torch.float64)
    found = []
    for python in (False, True):
        with python_steps(python):
            output, state = layer(pack_sequence(sequences), h0)
            state = state if isinstance(state, tuple) else (state,)
            weights = torch.linspace(-1, 1, output.data.shape[-1], dtype=torch.float64)
            loss = (output.data * weights).pow(2).sum() + sum(s.sin().sum() for s in state)
            inputs = [*sequences, *(h0 if isinstance(h0, tuple) else (h0,)), *layer.parameters()]
            grads = torch.autograd.grad(loss, inputs, allow_unused=True)
            grads = [
                torch.zeros_like(t) if g is None else g for g, t in zip(grads, inputs, strict=True)
            ]
            found.append([output.data, *state, *grads])
            if not python:
                assert "DerivedSequenceBackward" in grad_fn_names(output.data)
    for ours, theirs in zip(*found, strict=True):
        assert_close(ours, theirs, atol=1e-12, rtol=1e-10)


@pytest.mark.slow
def test_gradgradcheck_through_a_packed_batch():
    layer = Recurrent(CELLS_HERE["every_operation"](), 2, 3, bidirectional=True).double()
    sequences, h0 = packed(layer, torch.float64, lengths=(3, 2, 1))

    def function(*tensors):
        output, _ = layer(pack_sequence(list(tensors[:3])), tuple(tensors[3:]))
        return output.data

    inputs = (*sequences, *h0)
    assert "DerivedSequenceBackward" in grad_fn_names(function(*inputs))
    assert torch.autograd.gradcheck(function, inputs)
    assert torch.autograd.gradgradcheck(function, inputs)


@pytest.mark.parametrize("name", ["users_lstm", "layernorm_lstm"])
def test_a_layer_without_bias_and_a_hidden_size_over_one_block_of_features(name):
    # 300 features: a block of 256 and a bit, or for the layer norm one whole row of 300
    layer = Recurrent(CELLS_HERE[name](), 5, 300, bias=False).double()
    x, h0 = batch(layer, 4, 19, torch.float64)  # 19 rows: several blocks of rows, the last short
    derived = run(layer, x, h0, python=False)
    assert "DerivedSequenceBackward" in grad_fn_names(derived[0])
    reference = run(layer, x, h0, python=True)
    for ours, theirs in zip(derived[2], reference[2], strict=True):
        assert_close(ours, theirs, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize(
    "name",
    [pytest.param("every_operation", marks=pytest.mark.slow), "indrnn",
     pytest.param("peephole_lstm", marks=pytest.mark.slow),
     pytest.param("layernorm_lstm", marks=pytest.mark.slow)],
)  # fmt: skip
def test_gradcheck_and_gradgradcheck_through_the_derived_loops(name):
    torch.manual_seed(0)
    layer = Recurrent(CELLS_HERE[name](), 2, 3, bidirectional=True).double()
    x, h0 = batch(layer, 4, 2, torch.float64, seed=3)
    states = h0 if isinstance(h0, tuple) else (h0,)
    parameters = list(layer.parameters())

    def function(x, *tensors):
        given_states = tensors[: len(states)]
        names = [n for n, _ in layer.named_parameters()]
        given = dict(zip(names, tensors[len(states) :], strict=True))
        hidden = given_states if len(given_states) > 1 else given_states[0]
        output, final = torch.func.functional_call(layer, given, (x, hidden))
        final = final if isinstance(final, tuple) else (final,)
        return (output, *final)

    inputs = (x, *states, *[p.detach().clone().requires_grad_() for p in parameters])
    assert "DerivedSequenceBackward" in grad_fn_names(function(*inputs)[0])
    assert torch.autograd.gradcheck(function, inputs)
    assert torch.autograd.gradgradcheck(function, inputs)


class ScaledByItsMean(Cell):
    """A step with a reduction the programs do not hold (a mean over the features alone)."""

    gates = ("h",)

    def step(self, x, hh, state, p):
        h = torch.tanh(x + hh)
        return h * h.mean(dim=-1, keepdim=True), {}


def test_a_step_that_is_not_elementwise_keeps_the_traced_loop_and_its_results():
    layer = Recurrent(ScaledByItsMean(), 3, 4).double()
    x, h0 = batch(layer, 5, 2, torch.float64)
    ours = run(layer, x, h0, python=False)
    assert "DerivedSequenceBackward" not in grad_fn_names(ours[0])
    assert all(p is None for p in made_for(layer.cell, DERIVED).values())
    theirs = run(layer, x, h0, python=True)
    for a, b in zip(ours[2], theirs[2], strict=True):
        assert_close(a, b)


class DependsOnTheBatchSize(Cell):
    """A step whose Python reads the batch size: derived at one size it would be wrong at
    another, so it must not be derived."""

    gates = ("h",)

    def step(self, x, hh, state, p):
        return torch.tanh(x + hh) * (1.0 if x.shape[0] > 2 else 0.5), {}


def test_a_step_that_reads_the_batch_size_is_not_derived():
    layer = Recurrent(DependsOnTheBatchSize(), 3, 4).double()
    for size in (2, 5):
        x, h0 = batch(layer, 3, size, torch.float64)
        ours = run(layer, x, h0, python=False)
        theirs = run(layer, x, h0, python=True)
        assert "DerivedSequenceBackward" not in grad_fn_names(ours[0])
        for a, b in zip(ours[2], theirs[2], strict=True):
            assert_close(a, b)


def test_inference_and_forward_mode_give_the_steps_values():
    layer = Recurrent(CELLS_HERE["every_operation"](), 3, 4, num_layers=2).double()
    x, h0 = batch(layer, 5, 2, torch.float64)
    with torch.no_grad():
        ours, _ = layer(x, h0)
        with python_steps():
            theirs, _ = layer(x, h0)
    assert_close(ours, theirs, atol=1e-12, rtol=1e-10)
    # forward mode: the Function has no forward formula, so the traced loop runs
    import torch.autograd.forward_ad as fwAD

    tangent = torch.randn_like(x)
    with fwAD.dual_level():
        output, _ = layer(fwAD.make_dual(x.detach(), tangent), tuple(s.detach() for s in h0))
        derivative = fwAD.unpack_dual(output).tangent
    with torch.no_grad(), python_steps():
        _, expected = torch.func.jvp(
            lambda x: layer(x, tuple(s.detach() for s in h0))[0], (x.detach(),), (tangent,)
        )
    assert_close(derivative, expected, atol=1e-12, rtol=1e-10)


def test_a_nan_comes_out_where_it_goes_in():
    layer = Recurrent(CELLS["indrnn"](), 2, 3)  # relu: NaN must pass, as torch's relu lets it
    x = torch.zeros(3, 2, 2)
    x[1, 0, 0] = math.nan
    with torch.no_grad():
        ours, _ = layer(x)
        with python_steps():
            theirs, _ = layer(x)
    assert torch.equal(ours.isnan(), theirs.isnan()) and ours.isnan().any()


@pytest.mark.parametrize("name", ["layernorm_lstm", "sru", "every_operation"])
def test_sampling_steps_through_the_derived_forward_program_as_the_model_reads(name):
    stepper, stepped, read = stepped_and_read(CELLS_HERE[name]())
    assert_close(stepped, read, atol=1e-12, rtol=1e-10)
    assert stepper.derived and all(found is not None for found in stepper.derived.values()), (
        "the stepper did not take the derived program"
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["layernorm_lstm", "sru"])
@pytest.mark.parametrize("hidden", [1, 33])
@pytest.mark.parametrize("rows", [1, 9])
@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_the_edges_one_feature_one_row_one_step(name, hidden, rows, steps, bias):
    layer = Recurrent(CELLS_HERE[name](), 3, hidden, num_layers=2, bidirectional=True, bias=bias)
    layer = layer.double()
    x, h0 = batch(layer, steps, rows, torch.float64)
    derived = run(layer, x, h0, python=False)
    assert "DerivedSequenceBackward" in grad_fn_names(derived[0])
    reference = run(layer, x, h0, python=True)
    # A layer norm over one feature normalises to exactly 0 (variance 0, 1/sqrt(eps) ≈ 316):
    # the programs' gain gradient is then exactly 0 where torch's own layer norm leaves
    # round-off of a few 1e-12, beside gradients of a few hundred: an absolute 1e-10.
    for ours, theirs in zip(
        [derived[0], *derived[1], *derived[2]],
        [reference[0], *reference[1], *reference[2]],
        strict=True,
    ):
        assert_close(ours, theirs, atol=1e-10, rtol=1e-10)
