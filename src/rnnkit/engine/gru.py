"""Hand-written backpropagation through time for the GRU: the bptt engine beside the reference.

torch.nn.GRU on the CPU (no fused kernel there) and rnnkit's reference both let autograd record
~10 operations per step. Here a step is one matrix product and one pass over the gates:

    before the loop:        x_proj_t = W_ih x_t + b_ih       (all steps: one product) (B, 3H)
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
                            dx_t = dx_proj_t W_ih,  dW_ih = Σ_t dx_proj_tᵀ x_t,  db_ih = Σ dx_proj_t
    second order:           recomputed by the equations under autograd (second_order.py)

The loops run in C++ (``kernels/gru_loops.cpp``) where they build, else as written below.
Kept for the backward: r, z, n (T, B, 3H), hn (T, B, H) and h_t (T, B, H).
"""

import torch
from torch import Tensor

from rnnkit.cells import Parameters
from rnnkit.cells.gru import GRU
from rnnkit.engine import ops
from rnnkit.engine.bptt import (
    backward_may_come,
    backward_needs_a_graph,
    input_projection,
    projection_backward,
    time_order,
)
from rnnkit.engine.second_order import differentiable_backward

DEFINITION = GRU()
NO_PARAMETERS = Parameters({})


class GRUSequence(torch.autograd.Function):
    """One GRU direction over a whole (T, B) batch, the input projection included; inputs and
    outputs time-major, in time order."""

    @staticmethod
    def forward(ctx, x, w_ih, b_ih, h0, w_hh, b_hh, reverse: bool, keep: bool):
        x_proj = input_projection(x, w_ih, b_ih, reverse)  # (T, B, 3H), in loop order
        bias = b_hh if b_hh is not None else x_proj.new_zeros(x_proj.shape[-1])
        # The ops get contiguous copies; the Function saves its own inputs, so that the
        # differentiable backward (second_order.py) is a function of them, not of copies.
        loop_inputs = (x_proj, h0.contiguous(), w_hh.contiguous(), bias.contiguous())
        ctx.reverse = reverse
        if not keep:
            outputs = ops.gru_infer(*loop_inputs)
            return time_order(outputs, reverse), outputs[-1].clone()
        gates, hidden_n, outputs = ops.gru_forward(*loop_inputs)
        ctx.save_for_backward(x, w_ih, b_ih, h0, w_hh, b_hh, gates, hidden_n, outputs)
        return time_order(outputs, reverse), outputs[-1].clone()

    @staticmethod
    def backward(ctx, grad_outputs: Tensor, grad_h_n: Tensor):
        x, w_ih, b_ih, h0, w_hh, b_hh, gates, hidden_n, outputs = ctx.saved_tensors
        if backward_needs_a_graph(grad_outputs, grad_h_n):
            inputs = {"x": x, "w_ih": w_ih, "bias": b_ih, "h0": h0, "w_hh": w_hh, "b_hh": b_hh}
            grads = differentiable_backward(ctx, DEFINITION, inputs, (grad_outputs, grad_h_n))
            return (*grads, None, None)
        grad_x_proj, grad_hh, grad_h0 = ops.gru_backward(
            gates, hidden_n, outputs, h0.contiguous(), w_hh.contiguous(),
            time_order(grad_outputs, ctx.reverse).contiguous(), grad_h_n.contiguous(),
        )  # fmt: skip
        hidden_inputs = torch.cat([h0.unsqueeze(0), outputs[:-1]])  # h_{t-1}: (T, B, H)
        flat_grad = grad_hh.flatten(0, 1)  # (T·B, 3H)
        grad_w_hh = flat_grad.t() @ hidden_inputs.flatten(0, 1)  # (3H, H)
        grad_b_hh = flat_grad.sum(0) if b_hh is not None else None
        grad_x, grad_w_ih, grad_b_ih = projection_backward(
            grad_x_proj, x, w_ih, ctx.reverse, ctx.needs_input_grad[:3]
        )
        return grad_x, grad_w_ih, grad_b_ih, grad_h0, grad_w_hh, grad_b_hh, None, None


def gru_forward(x_proj: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor, keep: bool = True):
    """The forward time loop in Python -> r, z, n (T, B, 3H), hn (T, B, H), h_t (T, B, H).
    (keep=False lets the C++ loop keep only the last step's gates; here all are kept.)"""
    steps, batch, _ = x_proj.shape
    hidden = h0.shape[-1]
    gates = torch.empty_like(x_proj)
    hidden_n = x_proj.new_empty(steps, batch, hidden)
    outputs = torch.empty_like(hidden_n)
    h = h0
    for t in range(steps):
        hh = torch.addmm(b_hh, h, w_hh.t())  # (B, 3H)
        h, found = DEFINITION.step(x_proj[t], hh, (h,), NO_PARAMETERS)  # cells/gru.py
        torch.cat([found[name] for name in DEFINITION.gates], dim=1, out=gates[t])
        hidden_n[t] = hh[:, 2 * hidden :]  # W_hn h_{t-1} + b_hn, which the backward reads
        outputs[t] = h
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


def gru_sequence(
    x: Tensor,
    w_ih: Tensor,
    b_ih: Tensor | None,
    h0: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    reverse: bool = False,
):
    """x (T, B, I), w_ih (3H, I), b_ih (3H) or None, h0 (B, H), w_hh (3H, H), b_hh (3H) or None
    -> outputs (T, B, H) in time order, h_T (B, H) (with reverse: after reading x_0)."""
    keep = backward_may_come(x, w_ih, b_ih, h0, w_hh, b_hh)
    return GRUSequence.apply(x, w_ih, b_ih, h0, w_hh, b_hh, reverse, keep)
