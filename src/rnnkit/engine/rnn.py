"""Hand-written backpropagation through time for the Elman RNN (tanh or relu).

    before the loop:        x_proj_t = W_ih x_t + b_ih + b_hh    (all steps, by the caller)
    forward, per step t:    h_t = act(x_proj_t + W_hh h_{t-1})
    backward, t = T..1:     da_t = (dh_t(from the output) + dh(from step t+1)) ⊙ act'
                            with act' = 1 − h_t² (tanh) or [h_t > 0] (relu; a NaN h_t
                            passes the gradient, as torch.nn's relu backward does)
                            dh(for step t−1) = da_t W_hh
    after the loop:         dW_hh = Σ_t da_tᵀ h_{t-1} (one product), dx_proj = da (all steps)

The loops run in C++ (``kernels/rnn_loops.cpp``) where they build, else as written below.
Only h_t (T, B, H) is kept for the backward.
"""

import sys

import torch
from torch import Tensor

from rnnkit.engine import compiled


class RNNSequence(torch.autograd.Function):
    """One RNN direction over a whole (T, B) batch; inputs and outputs time-major."""

    @staticmethod
    def forward(ctx, x_proj: Tensor, h0: Tensor, w_hh: Tensor, relu: bool):
        x_proj, h0 = x_proj.contiguous(), h0.contiguous()
        loops = compiled.loops_for(x_proj, sys.modules[__name__])
        (outputs,) = loops.rnn_forward(x_proj, h0, w_hh, relu)
        ctx.save_for_backward(outputs, h0, w_hh)
        ctx.relu = relu
        return outputs, outputs[-1].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_outputs: Tensor, grad_h_n: Tensor):
        outputs, h0, w_hh = ctx.saved_tensors
        loops = compiled.loops_for(outputs, sys.modules[__name__])
        grad_pre, grad_h0 = loops.rnn_backward(outputs, w_hh, grad_outputs, grad_h_n, ctx.relu)
        hidden_inputs = torch.cat([h0.unsqueeze(0), outputs[:-1]])  # h_{t-1}: (T, B, H)
        grad_w_hh = grad_pre.flatten(0, 1).t() @ hidden_inputs.flatten(0, 1)  # (H, H)
        return grad_pre, grad_h0, grad_w_hh, None


def rnn_forward(x_proj: Tensor, h0: Tensor, w_hh: Tensor, relu: bool):
    """The forward time loop in Python -> [h_t (T, B, H)]."""
    outputs = torch.empty_like(x_proj)
    h = h0
    for t in range(x_proj.shape[0]):
        pre_activation = torch.addmm(x_proj[t], h, w_hh.t())
        if relu:
            h = torch.clamp(pre_activation, min=0, out=outputs[t])
        else:
            h = torch.tanh(pre_activation, out=outputs[t])
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


def rnn_sequence(x_proj: Tensor, h0: Tensor, w_hh: Tensor, relu: bool):
    """x_proj = W_ih x_t + b_ih + b_hh (T, B, H), h0 (B, H), w_hh (H, H)
    -> outputs (T, B, H), h_T (B, H)."""
    return RNNSequence.apply(x_proj, h0, w_hh, relu)
