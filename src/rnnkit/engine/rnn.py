"""Hand-written backpropagation through time for the Elman RNN (tanh or relu).

    before the loop:        x_proj_t = W_ih x_t + b_ih + b_hh    (all steps: one product)
    forward, per step t:    h_t = act(x_proj_t + W_hh h_{t-1})
    backward, t = T..1:     da_t = (dh_t(from the output) + dh(from step t+1)) ⊙ act'
                            with act' = 1 − h_t² (tanh) or [h_t > 0] (relu; a NaN h_t
                            passes the gradient, as torch.nn's relu backward does)
                            dh(for step t−1) = da_t W_hh
    after the loop:         dW_hh = Σ_t da_tᵀ h_{t-1} (one product), dx_proj = da (all steps)
                            dx_t = da_t W_ih,  dW_ih = Σ_t da_tᵀ x_t,  db = Σ_t da_t
    second order:           recomputed by the equations under autograd (second_order.py)

The loops run in C++ (``kernels/rnn_loops.cpp``) where they build, else as written below.
Only h_t (T, B, H) is kept for the backward.
"""

import torch
from torch import Tensor

from rnnkit.cells import Parameters
from rnnkit.cells.rnn import ElmanRNN
from rnnkit.engine import ops
from rnnkit.engine.bptt import (
    backward_may_come,
    backward_needs_a_graph,
    input_projection,
    projection_backward,
    time_order,
)
from rnnkit.engine.second_order import differentiable_backward

DEFINITIONS = {False: ElmanRNN("tanh"), True: ElmanRNN("relu")}  # by relu
NO_PARAMETERS = Parameters({})


class RNNSequence(torch.autograd.Function):
    """One RNN direction over a whole (T, B) batch, the input projection included; inputs and
    outputs time-major, in time order."""

    @staticmethod
    def forward(ctx, x, w_ih, bias, h0, w_hh, relu: bool, reverse: bool, keep: bool):
        x_proj = input_projection(x, w_ih, bias, reverse)  # (T, B, H), in loop order
        # The ops get contiguous copies; the Function saves its own inputs, so that the
        # differentiable backward (second_order.py) is a function of them, not of copies.
        outputs = ops.rnn_forward(x_proj.contiguous(), h0.contiguous(), w_hh.contiguous(), relu)
        if keep:
            ctx.save_for_backward(x, w_ih, bias, h0, w_hh, outputs)
        ctx.relu, ctx.reverse = relu, reverse
        return time_order(outputs, reverse), outputs[-1].clone()

    @staticmethod
    def backward(ctx, grad_outputs: Tensor, grad_h_n: Tensor):
        x, w_ih, bias, h0, w_hh, outputs = ctx.saved_tensors
        if backward_needs_a_graph(grad_outputs, grad_h_n):
            nonlinearity = "relu" if ctx.relu else "tanh"
            inputs = {"x": x, "w_ih": w_ih, "bias": bias, "h0": h0, "w_hh": w_hh}
            grads = (grad_outputs, grad_h_n)
            return (
                *differentiable_backward(ctx, ElmanRNN(nonlinearity), inputs, grads),
                None,
                None,
                None,
            )
        grad_pre, grad_h0 = ops.rnn_backward(
            outputs, w_hh.contiguous(), time_order(grad_outputs, ctx.reverse).contiguous(),
            grad_h_n.contiguous(), ctx.relu,
        )  # fmt: skip
        hidden_inputs = torch.cat([h0.unsqueeze(0), outputs[:-1]])  # h_{t-1}: (T, B, H)
        grad_w_hh = grad_pre.flatten(0, 1).t() @ hidden_inputs.flatten(0, 1)  # (H, H)
        grad_x, grad_w_ih, grad_bias = projection_backward(
            grad_pre, x, w_ih, ctx.reverse, ctx.needs_input_grad[:3]
        )
        return grad_x, grad_w_ih, grad_bias, grad_h0, grad_w_hh, None, None, None


def rnn_forward(x_proj: Tensor, h0: Tensor, w_hh: Tensor, relu: bool):
    """The forward time loop in Python -> [h_t (T, B, H)]."""
    outputs = torch.empty_like(x_proj)
    cell = DEFINITIONS[relu]
    h = h0
    for t in range(x_proj.shape[0]):
        h, _ = cell.step(x_proj[t], h @ w_hh.t(), (h,), NO_PARAMETERS)  # cells/rnn.py
        outputs[t] = h
    return [outputs]


def rnn_backward(outputs, w_hh, grad_outputs, grad_h_n, relu: bool):
    """The backward time loop in Python -> da (T, B, H), dh_0 (B, H)."""
    grad_pre = torch.empty_like(outputs)
    dh = grad_h_n.clone()
    for t in range(outputs.shape[0] - 1, -1, -1):
        h = outputs[t]
        slope = ((h > 0) | h.isnan()).to(h.dtype) if relu else 1 - h * h  # NaN: as torch.nn
        torch.mul(dh + grad_outputs[t], slope, out=grad_pre[t])
        dh = grad_pre[t] @ w_hh
    return grad_pre, dh


def rnn_sequence(
    x: Tensor,
    w_ih: Tensor,
    bias: Tensor | None,
    h0: Tensor,
    w_hh: Tensor,
    relu: bool,
    reverse: bool = False,
):
    """x (T, B, I), w_ih (H, I), bias = b_ih + b_hh (H) or None, h0 (B, H), w_hh (H, H)
    -> outputs (T, B, H) in time order, h_T (B, H) (with reverse: after reading x_0)."""
    keep = backward_may_come(x, w_ih, bias, h0, w_hh)
    return RNNSequence.apply(x, w_ih, bias, h0, w_hh, relu, reverse, keep)
