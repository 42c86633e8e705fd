"""The cells against torch.nn's cells (float64), gradcheck, initialisation and errors: each test
twice, once with a step's C++ code (engine/kernels/cell_steps.cpp) and once with the Python
reference equations (rnnkit.nn.equations)."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import rnnkit
from helpers import skip_without_a_compiler
from rnnkit.engine.dispatch import cell_steps
from rnnkit.errors import InputShapeError


@pytest.fixture(autouse=True, params=["cpp", "python"])
def step_code(request, monkeypatch):
    """RNNKIT_KERNELS=cpp: the C++ step (skipped, with the reason, where it cannot build unless
    the environment demands it); python: the reference equations."""
    if request.param == "cpp":
        skip_without_a_compiler()
    monkeypatch.setenv("RNNKIT_KERNELS", request.param)
    probe = torch.zeros(1, dtype=torch.double)
    assert (cell_steps(probe) is not None) == (request.param == "cpp")
    return request.param


CELLS = [
    ("RNNCell", {"nonlinearity": "tanh"}),
    ("RNNCell", {"nonlinearity": "relu"}),
    ("LSTMCell", {}),
    ("GRUCell", {}),
]


def cell_pair(name, bias=True, **kwargs):
    reference = getattr(nn, name)(5, 7, bias=bias, **kwargs).double()
    ours = getattr(rnnkit, name)(5, 7, bias=bias, **kwargs).double()
    ours.load_state_dict(reference.state_dict())
    return ours, reference


def random_state(name, batch_shape):
    if name == "LSTMCell":
        return tuple(torch.randn(*batch_shape, 7, dtype=torch.double) for _ in range(2))
    return torch.randn(*batch_shape, 7, dtype=torch.double)


def flat(value):
    return list(value) if isinstance(value, tuple) else [value]


@pytest.mark.parametrize(("name", "kwargs"), CELLS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch_shape", [(3,), ()], ids=["batched", "unbatched"])
@pytest.mark.parametrize("with_state", [True, False])
def test_cell_matches_torch(name, kwargs, bias, batch_shape, with_state):
    ours, reference = cell_pair(name, bias, **kwargs)
    x = torch.randn(*batch_shape, 5, dtype=torch.double, requires_grad=True)
    state = random_state(name, batch_shape) if with_state else None
    if state is not None:
        for s in flat(state):
            s.requires_grad_()
    inputs = [x, *(flat(state) if state is not None else [])]

    def run(module):
        out = flat(module(x, state))
        loss = sum(
            (o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o)).sum() for o in out
        )
        grads = torch.autograd.grad(loss, [*inputs, *module.parameters()])
        return out, grads

    (out_a, grads_a), (out_b, grads_b) = run(ours), run(reference)
    assert [o.shape for o in out_a] == [o.shape for o in out_b]
    assert_close(out_a, out_b, rtol=1e-12, atol=1e-12)
    assert_close(grads_a, grads_b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("name", "kwargs"), CELLS)
def test_cell_gradcheck(name, kwargs):
    ours, _ = cell_pair(name, **kwargs)
    x = torch.randn(2, 5, dtype=torch.double, requires_grad=True)
    state = random_state(name, (2,))
    states = [s.requires_grad_() for s in flat(state)]
    params = list(ours.parameters())

    def function(x, *rest):
        given, weights = rest[: len(states)], rest[len(states) :]
        named = dict(zip([n for n, _ in ours.named_parameters()], weights, strict=True))
        hx = tuple(given) if name == "LSTMCell" else given[0]
        return torch.func.functional_call(ours, named, (x, hx))

    assert torch.autograd.gradcheck(function, (x, *states, *params))


@pytest.mark.parametrize(("name", "kwargs"), CELLS)
@pytest.mark.parametrize("bias", [True, False])
def test_cell_second_order_gradients(name, kwargs, bias):
    """gradgradcheck through the step, and a gradient penalty's gradient equal to torch.nn's."""
    ours, reference = cell_pair(name, bias, **kwargs)
    x = torch.randn(2, 5, dtype=torch.double, requires_grad=True)
    states = [s.requires_grad_() for s in flat(random_state(name, (2,)))]

    def function(x, *given):
        hx = tuple(given) if name == "LSTMCell" else given[0]
        return flat(ours(x, hx))[0]

    assert torch.autograd.gradgradcheck(function, (x, *states))

    def penalty(module):
        hx = tuple(states) if name == "LSTMCell" else states[0]
        out = flat(module(x, hx))[0]
        (gx,) = torch.autograd.grad(out.pow(2).sum(), x, create_graph=True)
        return torch.autograd.grad(gx.pow(2).sum(), list(module.parameters()))

    assert_close(penalty(ours), penalty(reference), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("name", "kwargs"), CELLS)
def test_cell_initialisation_matches_torch(name, kwargs):
    torch.manual_seed(3)
    reference = getattr(nn, name)(5, 7, **kwargs)
    torch.manual_seed(3)
    ours = getattr(rnnkit, name)(5, 7, **kwargs)
    assert list(ours.state_dict()) == list(reference.state_dict())
    for a, b in zip(ours.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)
    assert repr(ours) == repr(reference)


def test_cell_without_bias_has_no_bias_parameters():
    cell = rnnkit.GRUCell(3, 4, bias=False)
    assert cell.bias_ih is None and cell.bias_hh is None
    assert set(cell.state_dict()) == {"weight_ih", "weight_hh"}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c(torch.randn(2, 3, 5)), "Expected input to be 1D"),
        (lambda c: c(torch.randn(2, 4)), "inconsistent input_size: got 4 expected 5"),
        (lambda c: c(torch.randn(2, 5), torch.randn(3, 7)), r"must have shape \(2, 7\)"),
        (lambda c: c(torch.randn(2, 5), torch.randn(2, 6)), "hidden_size: got 6, expected 7"),
        (lambda c: c(torch.randn(5), torch.randn(2, 7)), "unbatched 1-D"),
        (lambda c: c(torch.randn(2, 5, dtype=torch.double)), "does not match weight dtype"),
        (lambda c: c(torch.randn(2, 5), torch.randn(2, 7, dtype=torch.double)), "dtype"),
    ],
)
def test_cell_errors_name_the_problem(call, message):
    with pytest.raises(InputShapeError, match=message):
        call(rnnkit.GRUCell(5, 7))


def test_cell_errors_are_the_exception_types_torch_raises():
    cell = rnnkit.RNNCell(5, 7)
    with pytest.raises(ValueError):  # torch.nn: ValueError
        cell(torch.randn(1, 2, 5))
    with pytest.raises(RuntimeError):  # torch.nn: RuntimeError
        cell(torch.randn(2, 4))


def test_lstm_cell_rejects_a_bare_tensor_state():
    with pytest.raises(TypeError, match=r"tuple \(h_0, c_0\)"):
        rnnkit.LSTMCell(5, 7)(torch.randn(2, 5), torch.randn(2, 7))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"input_size": -1}, ValueError, "input_size must be greater than zero"),
        ({"hidden_size": 2.5}, TypeError, "hidden_size should be of type int"),
        ({"nonlinearity": "sigmoid"}, ValueError, "Select from 'tanh' or 'relu'"),
    ],
)
def test_cell_constructor_errors(kwargs, error, message):
    arguments = {"input_size": 3, "hidden_size": 4} | kwargs
    with pytest.raises(error, match=message):
        rnnkit.RNNCell(**arguments)


@pytest.mark.parametrize("bias", ["yes", "", 1, 0])
@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_a_non_bool_bias_is_taken_by_its_truth_as_torch_nn_takes_it(kind, bias):
    ours = pytest.warns(UserWarning, match="not a bool")
    with ours:
        cell = getattr(rnnkit, kind)(3, 4, bias)
    theirs = getattr(torch.nn, kind)(3, 4, bias)
    assert list(cell.state_dict()) == list(theirs.state_dict())
    assert repr(cell) == repr(theirs)


@pytest.mark.parametrize(
    ("kind", "hx"),
    [
        ("LSTMCell", lambda: (torch.randn(3, 21), torch.randn(3, 20))),  # hidden size
        ("GRUCell", lambda: torch.randn(5, 20)),  # batch
        ("RNNCell", lambda: torch.randn(1, 1, 3, 20)),  # rank
    ],
)
def test_a_wrong_state_is_reported_before_a_wrong_dtype_as_torch_nn_does(kind, hx):
    x = torch.randn(3, 10, dtype=torch.float64)  # the cell is float32
    state = hx()
    with pytest.raises(Exception) as theirs:
        getattr(torch.nn, kind)(10, 20)(x, state)
    with pytest.raises(Exception) as ours:
        getattr(rnnkit, kind)(10, 20)(x, state)
    assert str(theirs.value).split(": ")[-1] in str(ours.value)


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_a_parametrized_weight_is_the_one_a_call_in_a_loop_uses(kind):
    """A call on the quick path reads the weights from the parameter table; a
    parametrization (or weight norm) takes a weight out of it, and the computed one counts."""
    torch.manual_seed(0)
    theirs = getattr(nn, kind)(3, 4).double()
    ours = getattr(rnnkit, kind)(3, 4).double()
    ours.load_state_dict(theirs.state_dict())
    for module in (ours, theirs):
        nn.utils.parametrizations.weight_norm(module, "weight_hh")
        nn.utils.parametrize.register_parametrization(module, "weight_ih", Doubled())
    x = torch.randn(2, 3, dtype=torch.float64)
    state = torch.randn(2, 4, dtype=torch.float64)
    hx = (state, state.flip(0)) if kind == "LSTMCell" else state
    assert ours._plain(x, hx)  # the quick path, without the checks
    assert_close(ours(x, hx), theirs(x, hx))


class Doubled(nn.Module):
    def forward(self, weight):
        return 2 * weight
