"""A differentiable backward for the hand-written BPTT: exact second-order gradients.

The C++ loops compute the first-order gradient with no record of how, so a gradient of that
gradient (``create_graph=True``: gradient penalties, ``gradgradcheck``, Hessian-vector
products) would come back as zero. When such a graph is asked for, or torch.func batches the
backward, the autograd Functions hand over to :func:`differentiable_backward`: it runs the same
direction again with the reference equations under autograd and takes the vector-Jacobian
product with ``create_graph=True``. The recomputed forward equals the loops' to round-off
(tests), so the gradient is the same, and autograd can differentiate it again, to any order.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells import Cell, Parameters

NO_EXTRA_PARAMETERS = Parameters({})


def reference_direction(
    cell: Cell,
    reverse: bool,
    x: Tensor,
    w_ih: Tensor,
    bias: Tensor | None,
    h0: Tensor,
    w_hh: Tensor,
    c0: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> tuple[Tensor, ...]:
    """One direction of one layer by the cell's own step: x (T, B, I) -> outputs (T, B, H),
    h_T (and c_T for the LSTM). ``bias`` is what the Function adds to the input projection
    (b_ih + b_hh for the LSTM and the RNN, b_ih for the GRU, whose b_hh sits inside the reset
    gate)."""
    x_proj = F.linear(x, w_ih, bias)  # (T, B, G·H)
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    state = (h0,) if c0 is None else (h0, c0)
    outputs = []
    for t in steps:
        hh = F.linear(state[0], w_hh, b_hh)  # (B, G·H)
        state, _ = cell.run_step(x_proj[t], hh, state, NO_EXTRA_PARAMETERS)
        outputs.append(state[0])
    if reverse:
        outputs.reverse()
    return (torch.stack(outputs), *state)


def differentiable_backward(
    ctx, cell: Cell, inputs: dict[str, Tensor | None], grads: tuple[Tensor, ...], recompute=None
) -> tuple[Tensor | None, ...]:
    """The gradients of ``inputs`` (named as reference_direction's arguments, in the
    Function's argument order) as a differentiable function of the inputs and ``grads``.
    Returns one entry per input, None where ``ctx.needs_input_grad`` says none is needed.
    ``recompute``: a function of the inputs by name that gives the outputs again (default:
    reference_direction of ``cell``)."""
    names = list(inputs)
    wanted = [
        name
        for name, need in zip(names, ctx.needs_input_grad, strict=False)
        if need and inputs[name] is not None
    ]
    with torch.enable_grad():
        # A tensor that is a leaf without requires_grad (can happen under torch.func) is given
        # a fresh graph here; the others are the saved inputs themselves, so the result is a
        # function of them and autograd can differentiate it again.
        arguments = {
            name: (
                value.detach().requires_grad_()
                if name in wanted and value is not None and not value.requires_grad
                else value
            )
            for name, value in inputs.items()
        }
        if recompute is None:
            outputs = reference_direction(cell, ctx.reverse, **arguments)
        else:
            outputs = recompute(**arguments)
        found = torch.autograd.grad(
            outputs,
            [arguments[name] for name in wanted],
            grads,
            create_graph=True,
            allow_unused=True,
        )
    by_name = dict(zip(wanted, found, strict=True))
    return tuple(by_name.get(name) for name in names)
