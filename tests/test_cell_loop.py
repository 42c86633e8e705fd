"""Any cell's loop as one custom operator (engine/cell_loop.py), held to the step loop."""

import pytest
import torch
from torch.testing import assert_close

from rnnkit.cells import cell_from_spec
from rnnkit.engine.cell_loop import cell_loop, operator_name, step_loop


def inputs(name, steps=5, batch=2, hidden=3):
    cell = cell_from_spec(name)
    generator = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, dtype=torch.float64, generator=generator).requires_grad_()

    shapes = cell.weight_shapes(4, hidden, 0, bias=True)
    x_proj = rand(steps, batch, shapes["weight_ih"][0])
    states = tuple(rand(batch, hidden) for _ in cell.states)
    w_hh = rand(*shapes["weight_hh"]) if "weight_hh" in shapes else None
    b_hh = rand(*shapes["bias_hh"]) if "bias_hh" in shapes else None
    extra = {n: rand(*shape) for n, shape in shapes.items() if n not in (
        "weight_ih", "weight_hh", "bias_ih", "bias_hh")}  # fmt: skip
    return cell, x_proj, states, w_hh, b_hh, extra


@pytest.mark.parametrize("name", ["layernorm_lstm", "sru", "ligru"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(
    "check", [torch.autograd.gradcheck,
              pytest.param(torch.autograd.gradgradcheck, marks=pytest.mark.slow)],
)  # fmt: skip
def test_the_operator_equals_the_step_loop_with_exact_gradients(name, reverse, check):
    cell, x_proj, states, w_hh, b_hh, extra = inputs(name, steps=3)
    output, final = cell_loop(cell, x_proj, states, w_hh, b_hh, extra, reverse)
    expected, *expected_final = step_loop(cell, x_proj, states, w_hh, b_hh, extra, reverse)
    assert_close(output, expected)
    assert_close(final, tuple(expected_final))
    tensors = [x_proj, *states, *(t for t in (w_hh, b_hh) if t is not None), *extra.values()]

    def through_operator(*flat):
        it = iter(flat)
        x, s = next(it), tuple(next(it) for _ in states)
        w = next(it) if w_hh is not None else None
        b = next(it) if b_hh is not None else None
        e = {n: next(it) for n in extra}
        out, fin = cell_loop(cell, x, s, w, b, e, reverse)
        return out, *fin

    assert check(through_operator, tensors)


def test_the_operators_name_is_the_same_in_every_process():
    # an exported program names the operator: it must not depend on the order cells were made
    cell = cell_from_spec("layernorm_lstm")
    assert operator_name(cell, ("ln_x",)) == operator_name(cell_from_spec("layernorm_lstm"),
                                                           ("ln_x",))  # fmt: skip
    assert operator_name(cell, ("ln_x",)) != operator_name(cell, ("ln_x", "weight_hr"))
    assert operator_name(cell_from_spec("rnn"), ()) != operator_name(cell_from_spec("sru"), ())
