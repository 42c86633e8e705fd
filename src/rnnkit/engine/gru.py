"""Hand-written backpropagation through time for the GRU: the fast path beside the reference.

torch.nn.GRU on the CPU (no fused kernel there) and rnnkit's reference both let autograd record
~10 operations per step. Here a step is one matrix product and one pass over the gates:

    before the loop:        x_proj_t = W_ih x_t + b_ih       (all steps, by the caller) (B, 3H)
    forward, per step t:    hh = W_hh h_{t-1}                                           (B, 3H)
                            r = σ(x_r + hh_r + b_hr),  z = σ(x_z + hh_z + b_hz)
                            hn = hh_n + b_hn,          n = tanh(x_n + r ⊙ hn)
                            h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}
    backward, t = T..1:     dh = dh_t(from the output) + dh(from step t+1)
                            da_n = dh ⊙ (1 − z) ⊙ (1 − n²)
                            da_r = da_n ⊙ hn ⊙ r(1 − r),  da_z = dh ⊙ (h_{t-1} − n) ⊙ z(1 − z)
                            dx_proj_t = [da_r, da_z, da_n]        (the input side)
                            dhh_t = [da_r, da_z, da_n ⊙ r]        (the recurrent side)
                            dh(for step t−1) = dh ⊙ z + dhh_t W_hh
    after the loop:         dW_hh = Σ_t dhh_tᵀ h_{t-1},  db_hh = Σ_t dhh_t  (one product, one sum)

The loops run in C++ (``kernels/gru_loops.cpp``) where they build, else as written below.
Kept for the backward: r, z, n (T, B, 3H), hn (T, B, H) and h_t (T, B, H).
"""

import sys

import torch
from torch import Tensor

from rnnkit.engine import backward_may_come, compiled


class GRUSequence(torch.autograd.Function):
    """One GRU direction over a whole (T, B) batch; inputs and outputs time-major."""

    @staticmethod
    def forward(ctx, x_proj: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor | None, keep: bool):
        bias = b_hh if b_hh is not None else x_proj.new_zeros(x_proj.shape[-1])
        x_proj, h0, bias = x_proj.contiguous(), h0.contiguous(), bias.contiguous()
        loops = compiled.loops_for(x_proj, sys.modules[__name__])
        gates, hidden_n, outputs = loops.gru_forward(x_proj, h0, w_hh, bias, keep)
        if keep:
            ctx.save_for_backward(gates, hidden_n, outputs, h0, w_hh)
        ctx.has_bias = b_hh is not None
        return outputs, outputs[-1].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_outputs: Tensor, grad_h_n: Tensor):
        gates, hidden_n, outputs, h0, w_hh = ctx.saved_tensors
        loops = compiled.loops_for(gates, sys.modules[__name__])
        grad_x, grad_hh, grad_h0 = loops.gru_backward(
            gates, hidden_n, outputs, h0, w_hh, grad_outputs, grad_h_n
        )
        hidden_inputs = torch.cat([h0.unsqueeze(0), outputs[:-1]])  # h_{t-1}: (T, B, H)
        flat_grad = grad_hh.flatten(0, 1)  # (T·B, 3H)
        grad_w_hh = flat_grad.t() @ hidden_inputs.flatten(0, 1)  # (3H, H)
        grad_b_hh = flat_grad.sum(0) if ctx.has_bias else None
        return grad_x, grad_h0, grad_w_hh, grad_b_hh, None


def gru_forward(x_proj: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor, keep: bool = True):
    """The forward time loop in Python -> r, z, n (T, B, 3H), hn (T, B, H), h_t (T, B, H).
    (keep=False lets the C++ loop keep only the last step's gates; here all are kept.)"""
    steps, batch, _ = x_proj.shape
    hidden = h0.shape[-1]
    gates = torch.empty_like(x_proj)
    hidden_n = x_proj.new_empty(steps, batch, hidden)
    outputs = torch.empty_like(hidden_n)
    b_r, b_z, b_n = b_hh.chunk(3)
    h = h0
    for t in range(steps):
        x_r, x_z, x_n = x_proj[t].chunk(3, dim=1)
        hh_r, hh_z, hh_n = (h @ w_hh.t()).chunk(3, dim=1)
        r, z, n = gates[t].chunk(3, dim=1)
        torch.sigmoid(x_r + hh_r + b_r, out=r)
        torch.sigmoid(x_z + hh_z + b_z, out=z)
        hn = torch.add(hh_n, b_n, out=hidden_n[t])
        torch.tanh(x_n + r * hn, out=n)
        h = torch.add((1 - z) * n, z * h, out=outputs[t])
    return gates, hidden_n, outputs


def gru_backward(gates, hidden_n, outputs, h0, w_hh, grad_outputs, grad_h_n):
    """The backward time loop in Python -> dx_proj (T, B, 3H), dhh (T, B, 3H), dh_0 (B, H)."""
    steps = gates.shape[0]
    grad_x = torch.empty_like(gates)
    grad_hh = torch.empty_like(gates)
    dh = grad_h_n.clone()
    for t in range(steps - 1, -1, -1):
        r, z, n = gates[t].chunk(3, dim=1)
        h_previous = outputs[t - 1] if t > 0 else h0
        dh = dh + grad_outputs[t]
        da_r, da_z, da_n = grad_x[t].chunk(3, dim=1)
        torch.mul(dh * (1 - z), 1 - n * n, out=da_n)
        torch.mul(da_n * hidden_n[t], r * (1 - r), out=da_r)
        torch.mul(dh * (h_previous - n), z * (1 - z), out=da_z)
        grad_hh[t].copy_(grad_x[t])
        grad_hh[t, :, 2 * r.shape[1] :].mul_(r)  # the n block: da_n ⊙ r
        dh = dh * z + grad_hh[t] @ w_hh
    return grad_x, grad_hh, dh


def gru_sequence(x_proj: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor | None):
    """x_proj = W_ih x_t + b_ih (T, B, 3H), h0 (B, H), w_hh (3H, H), b_hh (3H) or None
    -> outputs (T, B, H), h_T (B, H)."""
    return GRUSequence.apply(x_proj, h0, w_hh, b_hh, backward_may_come(x_proj, h0, w_hh, b_hh))
