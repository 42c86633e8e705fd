"""The hidden side W_hh h + b_hh of the C++ loops whose steps autograd records (a user's cell's
traced loop, a built-in cell over a packed batch): W_hh's and b_hh's gradients come from one
product over all steps (engine/kernels/hidden_side.cpp), not one per step, and they are the
Python step's however they are asked for: twice of one graph, after a gradient of the input
alone, with a graph of the gradient (second order), without a bias."""

import pytest
import torch
from torch.nn.utils.rnn import pack_sequence
from torch.testing import assert_close

from helpers import python_steps, skip_without_a_compiler
from rnnkit.cells import CELLS
from rnnkit.engine.compiled import kernel_choice
from rnnkit.nn import runner
from rnnkit.nn.layers import Recurrent


@pytest.fixture(autouse=True)
def the_cpp_steps(monkeypatch):
    if kernel_choice() == "python":
        pytest.skip("RNNKIT_KERNELS=python: the Python steps run, with autograd's own sums")
    skip_without_a_compiler()
    # a user's cell takes the derived loops first: here the traced loop is held
    monkeypatch.setattr(runner, "derived_direction", lambda *args, **kwargs: None)


def backward_nodes(tensor) -> set[str]:
    found, seen, todo = set(), set(), [tensor.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        found.add(node.name())
        todo.extend(next_node for next_node, _ in node.next_functions)
    return found


def packed_batch():
    generator = torch.Generator().manual_seed(1)
    lengths = (6, 4, 4, 1)
    return pack_sequence(
        [torch.randn(n, 3, generator=generator, dtype=torch.float64) for n in lengths]
    )


def loss_of(layer, x):
    return layer(x)[0].data.pow(2).sum()


# (a user's cell through the traced loop, the built-in cells through packed_direction)
@pytest.mark.parametrize("name", ["layernorm_lstm", "lstm", "gru", "rnn"])
@pytest.mark.parametrize("bias", [True, False])
def test_the_weights_gradient_is_one_product_and_the_python_steps_however_asked(name, bias):
    torch.manual_seed(0)
    layer = Recurrent(CELLS[name](), 3, 5, num_layers=2, bias=bias).double()
    x = packed_batch()
    weights = [*layer.parameters()]
    with python_steps():
        expected = torch.autograd.grad(loss_of(layer, x), weights)
    summed = {"rtol": 1e-12, "atol": 1e-14}  # the same sum in another order

    loss = loss_of(layer, x)
    assert any("WeightsOfTheLoop" in node for node in backward_nodes(loss))
    for _ in range(2):
        assert_close(torch.autograd.grad(loss, weights, retain_graph=True), expected, **summed)

    data = x.data.detach().requires_grad_()
    loss = loss_of(layer, type(x)(data, x.batch_sizes))
    torch.autograd.grad(loss, data, retain_graph=True)  # no weight's rows kept
    assert_close(torch.autograd.grad(loss, weights, retain_graph=True), expected, **summed)
    with_graph = torch.autograd.grad(loss, weights, create_graph=True)
    assert all(g.requires_grad for g in with_graph)
    assert_close(with_graph, expected, **summed)


def test_second_order_through_the_packed_loop_is_exact():
    torch.manual_seed(0)
    layer = Recurrent(CELLS["lstm"](), 2, 3).double()
    names = [name for name, _ in layer.named_parameters()]
    x = pack_sequence([torch.randn(n, 2, dtype=torch.float64) for n in (4, 2)])

    def output(*weights):
        parameters = dict(zip(names, weights, strict=True))
        return torch.func.functional_call(layer, parameters, (x,))[0].data

    weights = [p.detach().requires_grad_() for p in layer.parameters()]
    assert torch.autograd.gradgradcheck(output, weights)
