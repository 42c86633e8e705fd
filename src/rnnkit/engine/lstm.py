"""Hand-written backpropagation through time for the LSTM: the bptt engine beside the reference.

The reference (:mod:`rnnkit.nn.recurrence`) lets autograd record ~11 operations per step and, in
the backward pass, accumulates the W_hh gradient one step at a time. Here the forward keeps
only what the backward needs, and the backward walks the steps in reverse by hand:

    before the loop:        x_proj_t = W_ih x_t + b_ih + b_hh  (all steps: one matrix product)
    forward, per step t:    a_t = x_proj_t + W_hh h_{t-1}                     (B, 4H)
                            i, f, g, o = σ(a_i), σ(a_f), tanh(a_g), σ(a_o)
                            c_t = f ⊙ c_{t-1} + i ⊙ g,   h_t = o ⊙ tanh(c_t)
    backward, t = T..1:     dh = dh_t(from the output) + dh(from step t+1)
                            do = dh ⊙ tanh(c_t)
                            dc = dc(from step t+1) + dh ⊙ o ⊙ (1 − tanh²(c_t))
                            di, df, dg = dc ⊙ g, dc ⊙ c_{t-1}, dc ⊙ i
                            da = [di ⊙ i(1−i), df ⊙ f(1−f), dg ⊙ (1−g²), do ⊙ o(1−o)]
                            dh(for step t−1) = da W_hh,   dc(for step t−1) = dc ⊙ f
    after the loop:         dW_hh = Σ_t da_tᵀ h_{t-1}  (one matrix product over all steps)
                            dx_t = da_t W_ih,  dW_ih = Σ_t da_tᵀ x_t,  db = Σ_t da_t
    second order:           when a graph of the gradient is asked for, the backward recomputes
                            the direction by the equations under autograd (second_order.py)

The loops exist twice: in C++ (``kernels/lstm_loops.cpp``: per step one matrix product and one
fused, vectorised pass over the gates; compiled on first use, see :mod:`rnnkit.engine.compiled`)
and in Python below (the fall-back where no compiler exists: its forward runs the definition's
own step, cells/lstm.py; its backward is the readable statement of what the C++ computes).
Tests hold both to the reference.

Memory: the gates after their nonlinearity (T, B, 4H), c_t and tanh(c_t) (T, B, H each) and
h_t (T, B, H) are kept: 7·T·B·H numbers, about what autograd keeps for the reference.
Only the plain configuration is handled here (no projection, every sequence of the same length);
engine/dispatch.py hands every other call to another engine.
"""

import torch
from torch import Tensor

from rnnkit.cells import Parameters
from rnnkit.cells.lstm import LSTM
from rnnkit.engine import ops
from rnnkit.engine.bptt import (
    backward_may_come,
    backward_needs_a_graph,
    input_projection,
    projection_backward,
    time_order,
)
from rnnkit.engine.second_order import differentiable_backward

DEFINITION = LSTM()
NO_PARAMETERS = Parameters({})


class LSTMSequence(torch.autograd.Function):
    """One LSTM direction over a whole (T, B) batch, the input projection included (its
    backward needs the layer input x, which the projection's own backward kept anyway);
    inputs and outputs time-major, in time order."""

    @staticmethod
    def forward(ctx, x, w_ih, bias, h0, c0, w_hh, reverse: bool, keep: bool):
        x_proj = input_projection(x, w_ih, bias, reverse)  # (T, B, 4H), in loop order
        # The ops get contiguous copies; the Function saves its own inputs, so that the
        # differentiable backward (second_order.py) is a function of them, not of copies.
        loop_inputs = (x_proj, h0.contiguous(), c0.contiguous(), w_hh.contiguous())
        ctx.reverse = reverse
        if not keep:
            outputs, c_last = ops.lstm_infer(*loop_inputs)
            return time_order(outputs, reverse), outputs[-1].clone(), c_last
        gates, cells, tanh_cells, outputs, c_last = ops.lstm_forward(*loop_inputs)
        ctx.save_for_backward(x, w_ih, bias, h0, c0, w_hh, gates, cells, tanh_cells, outputs)
        return time_order(outputs, reverse), outputs[-1].clone(), c_last

    @staticmethod
    def backward(ctx, grad_outputs: Tensor, grad_h_n: Tensor, grad_c_n: Tensor):
        x, w_ih, bias, h0, c0, w_hh, gates, cells, tanh_cells, outputs = ctx.saved_tensors
        if backward_needs_a_graph(grad_outputs, grad_h_n, grad_c_n):
            inputs = {"x": x, "w_ih": w_ih, "bias": bias, "h0": h0, "c0": c0, "w_hh": w_hh}
            grads = differentiable_backward(
                ctx, DEFINITION, inputs, (grad_outputs, grad_h_n, grad_c_n)
            )
            return (*grads, None, None)
        grad_gates, grad_h0, grad_c0 = ops.lstm_backward(
            gates, cells, tanh_cells, c0.contiguous(), w_hh.contiguous(),
            time_order(grad_outputs, ctx.reverse).contiguous(), grad_h_n.contiguous(),
            grad_c_n.contiguous(),
        )  # fmt: skip
        hidden_inputs = torch.cat([h0.unsqueeze(0), outputs[:-1]])  # h_{t-1}: (T, B, H)
        flat_grad = grad_gates.flatten(0, 1)  # (T·B, 4H)
        grad_w_hh = flat_grad.t() @ hidden_inputs.flatten(0, 1)  # (4H, H)
        grad_x, grad_w_ih, grad_bias = projection_backward(
            grad_gates, x, w_ih, ctx.reverse, ctx.needs_input_grad[:3]
        )
        return grad_x, grad_w_ih, grad_bias, grad_h0, grad_c0, grad_w_hh, None, None


def lstm_forward(x_proj: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, keep: bool = True):
    """The forward time loop in Python (kernels/lstm_loops.cpp is the same loop in C++).

    x_proj (T, B, 4H) = W_ih x_t + b_ih + b_hh -> gates after their nonlinearities (T, B, 4H),
    c_t, tanh(c_t) and h_t (T, B, H each), and c_T (B, H). (keep=False lets the C++ loop keep
    only what the next step needs; here everything is kept either way.)
    """
    steps, batch, _ = x_proj.shape
    hidden = h0.shape[-1]
    gates = torch.empty_like(x_proj)
    cells = x_proj.new_empty(steps, batch, hidden)
    tanh_cells = torch.empty_like(cells)
    outputs = torch.empty_like(cells)
    w_hh_t = w_hh.t()
    h, c = h0, c0
    for t in range(steps):
        # the definition's step (cells/lstm.py); b_hh is already in x_proj
        (h, c), found = DEFINITION.step(x_proj[t], h @ w_hh_t, (h, c), NO_PARAMETERS)
        torch.cat([found[name] for name in DEFINITION.gates], dim=1, out=gates[t])
        cells[t], outputs[t] = c, h
        torch.tanh(c, out=tanh_cells[t])  # what the backward reads
    return gates, cells, tanh_cells, outputs, cells[-1].clone()


def lstm_backward(gates, cells, tanh_cells, c0, w_hh, grad_outputs, grad_h_n, grad_c_n):
    """The backward time loop in Python -> da for every step (T, B, 4H), dh_0, dc_0."""
    steps = gates.shape[0]
    grad_gates = torch.empty_like(gates)  # (T, B, 4H) da_t
    dh = grad_h_n.clone()
    dc = grad_c_n.clone()
    for t in range(steps - 1, -1, -1):
        i, f, g, o = gates[t].chunk(4, dim=1)
        c_previous = cells[t - 1] if t > 0 else c0
        dh += grad_outputs[t]
        tanh_c = tanh_cells[t]
        dc.addcmul_(dh * o, 1 - tanh_c * tanh_c)
        di, df, dg, do = grad_gates[t].chunk(4, dim=1)
        torch.mul(dc * g, i * (1 - i), out=di)
        torch.mul(dc * c_previous, f * (1 - f), out=df)
        torch.mul(dc * i, 1 - g * g, out=dg)
        torch.mul(dh * tanh_c, o * (1 - o), out=do)
        dh = grad_gates[t] @ w_hh  # (B, H)
        dc = dc * f
    return grad_gates, dh, dc


def lstm_sequence(
    x: Tensor,
    w_ih: Tensor,
    bias: Tensor | None,
    h0: Tensor,
    c0: Tensor,
    w_hh: Tensor,
    reverse: bool = False,
):
    """x (T, B, I), w_ih (4H, I), bias = b_ih + b_hh (4H) or None, h0 and c0 (B, H), w_hh (4H, H)
    -> outputs (T, B, H), h_T (B, H), c_T (B, H); with reverse, the direction that reads the
    sequence backwards (its outputs still in time order; h_T, c_T after reading x_0)."""
    keep = backward_may_come(x, w_ih, bias, h0, c0, w_hh)
    return LSTMSequence.apply(x, w_ih, bias, h0, c0, w_hh, reverse, keep)
