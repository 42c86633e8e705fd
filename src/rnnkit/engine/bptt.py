"""What the hand-written BPTT of every cell (lstm.py, gru.py, rnn.py) shares: the input
projection done inside the autograd Function (so that its backward has the layer input, see
``projection_backward``) and the switch to a differentiable backward
(``backward_needs_a_graph``, second_order.py).
"""

import torch
from torch import Tensor

from rnnkit.engine.dispatch import compiling, records_backward, transforming


def backward_may_come(*tensors: Tensor | None) -> bool:
    """False under torch.no_grad() or when nothing needs a gradient: then a forward loop keeps
    nothing for a backward pass (less memory to touch)."""
    return records_backward(*tensors)


def backward_needs_a_graph(*grads: Tensor | None) -> bool:
    """True when the backward pass must itself be differentiable or batched: a graph of the
    gradient is being built (``create_graph=True``: grad mode is on inside a backward only
    then), or torch.func transforms the backward (vmap over gradients: gradcheck's batched
    check, per-sample gradients). The hand-written loops then hand over to second_order.py."""
    if compiling():  # torch.compile has no double backward; its traced backward is plain
        return False
    if torch.is_grad_enabled() or transforming():
        return True
    return any(g is not None and _batched(g) for g in grads)


def _batched(tensor: Tensor) -> bool:
    """A batch of gradients without storage of its own: torch.func's vmap or the older vmap
    that ``autograd.grad(..., is_grads_batched=True)`` (and gradcheck) uses."""
    functorch = torch._C._functorch
    return functorch.is_batchedtensor(tensor) or functorch.is_legacy_batchedtensor(tensor)


def input_projection(x: Tensor, w_ih: Tensor, bias: Tensor | None, reverse: bool) -> Tensor:
    """x (T, B, I) -> W_ih x_t + bias for every step at once (T, B, G·H), one matrix product,
    in the order the loop runs: the reverse direction reads the sequence backwards."""
    steps, batch, features = x.shape
    flat = x.reshape(steps * batch, features)  # (T·B, I)
    projected = flat @ w_ih.t() if bias is None else torch.addmm(bias, flat, w_ih.t())
    projected = projected.view(steps, batch, w_ih.shape[0])
    return projected.flip(0) if reverse else projected


def projection_backward(
    grad_proj: Tensor, x: Tensor, w_ih: Tensor, reverse: bool, needs: tuple[bool, bool, bool]
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """The gradients of x, W_ih and the bias from d(x_proj) (T, B, G·H), in loop order:
    dx = d(x_proj) W_ih, dW_ih = d(x_proj)ᵀ x, d(bias) = Σ d(x_proj); only those in ``needs``."""
    if reverse:
        grad_proj = grad_proj.flip(0)  # back to time order
    rows = x.shape[0] * x.shape[1]
    flat = grad_proj.reshape(rows, grad_proj.shape[-1])  # (T·B, G·H)
    grad_x = (flat @ w_ih).view(x.shape) if needs[0] else None
    grad_w_ih = flat.t() @ x.reshape(rows, x.shape[-1]) if needs[1] else None
    grad_bias = flat.sum(0) if needs[2] else None
    return grad_x, grad_w_ih, grad_bias


def time_order(outputs: Tensor, reverse: bool) -> Tensor:
    """The loop's outputs (T, B, H) in time order (the reverse direction ran backwards)."""
    return outputs.flip(0) if reverse else outputs
