"""The recurrence h_t = a_t ⊙ h_{t-1} + b_t solved for every t at once (cells/linear.py).

Two ways, the same numbers:

    sequential  one multiply-add per step over (B, H), under no autograd: a custom operator
                (``torch.ops.rnnkit.linear_scan``), so torch.compile holds it as one node and
                torch.export records it with T as a symbol. Fastest on a CPU, where the
                per-step work is small beside the input-side product. Its loop runs in C++
                (kernels/scan_loops.cpp: each thread walks every step of a slice of the
                features) where the loops built, else in Python (the twins below).
    parallel    a prefix scan over the affine maps h ↦ a h + b (Hillis and Steele: log2(T)
                rounds, each composing every element with the one 2^k steps before it), in
                plain tensor operations: T-fold parallel work for a GPU.

Why not the log-space form (Heinsen's two cumulative sums, as minGRU's paper does)? It needs
log b, so a b of either sign (minGRU's candidate is linear in x) takes complex numbers or a
split into signs whose difference cancels, and a saturated gate (a = 0 exactly in float32 at
σ(17)) is log 0. Composing affine maps needs neither: every round is products and sums of the
values the sequential loop multiplies, so the two agree to round-off; a float32 call can be
scanned in float64 (``accumulate``) to hold float64 round-off over thousands of steps.

Gradients: the backward of the scan is the same recurrence run backwards in time,
g_t = ∂L/∂h_t + a_{t+1} ⊙ g_{t+1},  ∂L/∂a_t = g_t ⊙ h_{t-1},  ∂L/∂b_t = g_t,  ∂L/∂h_0 = a_1 ⊙ g_1,
one pass of a second operator (``torch.ops.rnnkit.linear_scan_backward``). Its own backward is
written with the two operators (the adjoint of the reverse recurrence is the forward one), so
the gradient is differentiable again, to any order (exact second order).
"""

import sys

import torch
from torch import Tensor

from rnnkit.engine import compiled

COMPILED_DTYPES = (torch.float32, torch.float64)  # what the C++ loops (scan_loops.cpp) take


def _loops(a: Tensor):
    """The C++ loops for a float32/64 CPU tensor where they built, else the Python twins below."""
    here = sys.modules[__name__]
    return compiled.loops_for(a, here) if a.dtype in COMPILED_DTYPES else here


def linear_scan_forward(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """The Python twin of the C++ forward loop: one multiply-add per step."""
    out = torch.empty_like(b)
    h = h0
    for t in range(a.shape[0]):
        h = torch.addcmul(b[t], a[t], h, out=out[t])
    return out


def linear_scan_backward(a: Tensor, h0: Tensor, h: Tensor, grad: Tensor) -> tuple[Tensor, ...]:
    """The Python twin of the C++ backward loop: g_t = grad_t + a_{t+1} ⊙ g_{t+1} backwards in
    time, then ∂L/∂a_t = g_t ⊙ h_{t-1}, ∂L/∂b_t = g_t, ∂L/∂h_0 = a_0 ⊙ g_0."""
    g = torch.empty_like(grad)
    g[-1] = grad[-1]
    for t in range(a.shape[0] - 2, -1, -1):
        torch.addcmul(grad[t], a[t + 1], g[t + 1], out=g[t])
    previous = torch.cat([h0.unsqueeze(0), h[:-1]])
    return g * previous, g, a[0] * g[0]


def _dense(a: Tensor, b: Tensor, h0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """a, b, h0 as the loops take them: contiguous, h0 at the full (*S) shape."""
    shape = torch.broadcast_shapes(a.shape, b.shape)
    return (a.expand(shape).contiguous(), b.expand(shape).contiguous(),
            h0.expand(shape[1:]).contiguous())  # fmt: skip


@torch.library.custom_op("rnnkit::linear_scan", mutates_args=())
def linear_scan(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """a, b (T, *S), h0 (*S) -> h (T, *S) with h_t = a_t ⊙ h_{t-1} + b_t, one step at a time."""
    a, b, h0 = _dense(a, b, h0)
    return _loops(a).linear_scan_forward(a, b, h0)


@linear_scan.register_fake
def _(a, b, h0):
    return torch.empty_like(b)


@torch.library.custom_op("rnnkit::linear_scan_backward", mutates_args=())
def linear_scan_gradients(
    a: Tensor, h0: Tensor, h: Tensor, grad: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """∂L/∂a, ∂L/∂b, ∂L/∂h0 (at the full (*S) shape) of linear_scan from ∂L/∂h, in one pass
    backwards in time."""
    a, _, h0 = _dense(a, a, h0)
    if a.shape[0] == 0:  # no steps: nothing flows back, h0 included
        return torch.zeros_like(a), torch.zeros_like(a), torch.zeros_like(h0)
    grad_a, grad_b, grad_h0 = _loops(a).linear_scan_backward(
        a, h0, h.contiguous(), grad.contiguous()
    )
    return grad_a, grad_b, grad_h0


@linear_scan_gradients.register_fake
def _(a, h0, h, grad):
    return torch.empty_like(a), torch.empty_like(a), a.new_empty(a.shape[1:])


def _setup(ctx, inputs, output) -> None:
    a, b, h0 = inputs
    ctx.shapes = a.shape, b.shape, h0.shape  # an input that broadcast gets its sum
    ctx.save_for_backward(a, h0, output)


def _backward(ctx, grad: Tensor):
    a, h0, h = ctx.saved_tensors
    grads = linear_scan_gradients(a, h0, h, grad)
    return tuple(g.sum_to_size(shape) for g, shape in zip(grads, ctx.shapes, strict=True))


linear_scan.register_autograd(_backward, setup_context=_setup)


def _setup_gradients(ctx, inputs, output) -> None:
    a, h0, h, _ = inputs
    ctx.a_shape, ctx.h0_shape = a.shape, h0.shape
    ctx.save_for_backward(a, h0, h, output[1])


def _backward_of_gradients(ctx, grad_a: Tensor | None, grad_b: Tensor | None,
                           grad_h0: Tensor | None):  # fmt: skip
    """Second order, written with the operators themselves (so differentiable again). With u
    the incoming gradients of the three outputs (ga = g ⊙ h_prev, gb = g, gh0 = a_0 ⊙ g_0) and
    g the reverse scan of ∂L/∂h: w = u_a ⊙ h_prev + u_b (+ a_0 ⊙ u_h0 at t = 0) flows into
    g, whose adjoint is the forward scan v_t = w_t + a_t ⊙ v_{t-1} from 0; then ∂/∂grad = v,
    ∂/∂a_t = v_{t-1} ⊙ g_t (t ≥ 1; at t = 0, u_h0 ⊙ g_0), ∂/∂h_prev = u_a ⊙ g."""
    a, h0, h, g = ctx.saved_tensors
    if g.shape[0] == 0:  # no steps: the gradients were zeros, constant in everything
        return None, None, None, None
    a, _, h0 = _dense(a, a, h0)
    previous = torch.cat([h0.unsqueeze(0), h[:-1]])
    w = torch.zeros_like(g)
    if grad_a is not None:
        w = w + grad_a * previous
    if grad_b is not None:
        w = w + grad_b
    if grad_h0 is not None:
        w = torch.cat([(w[0] + a[0] * grad_h0).unsqueeze(0), w[1:]])
    v = linear_scan(a, w, torch.zeros_like(h0))
    first = grad_h0 * g[0] if grad_h0 is not None else torch.zeros_like(g[0])
    d_a = torch.cat([first.unsqueeze(0), v[:-1] * g[1:]]).sum_to_size(ctx.a_shape)
    d_h0 = d_h = None
    if grad_a is not None:
        d_previous = grad_a * g
        d_h0 = d_previous[0].sum_to_size(ctx.h0_shape)
        d_h = torch.cat([d_previous[1:], torch.zeros_like(d_previous[:1])])
    return d_a, d_h0, d_h, v


linear_scan_gradients.register_autograd(_backward_of_gradients, setup_context=_setup_gradients)


@linear_scan.register_vmap
def _(info, in_dims, a, b, h0):
    # The loop runs along dim 0 over any trailing shape: put the vmapped dim at 1 (0 for h0).
    size = info.batch_size
    a_dim, b_dim, h_dim = in_dims
    a = a.movedim(a_dim, 1) if a_dim is not None else a.unsqueeze(1).expand(-1, size, *a.shape[1:])
    b = b.movedim(b_dim, 1) if b_dim is not None else b.unsqueeze(1).expand(-1, size, *b.shape[1:])
    h0 = h0.movedim(h_dim, 0) if h_dim is not None else h0.expand(size, *h0.shape)
    return linear_scan(a, b, h0), 1


@linear_scan_gradients.register_vmap
def _(info, in_dims, a, h0, h, grad):
    # As linear_scan's: the vmapped dim at 1 of the (T, *S) tensors and at 0 of h0 (an h0
    # without it broadcasts over it).
    a_dim, h0_dim, h_dim, grad_dim = in_dims

    def along_time(x, dim):
        if dim is None:
            return x.unsqueeze(1).expand(-1, info.batch_size, *x.shape[1:])
        return x.movedim(dim, 1)

    h0 = h0.movedim(h0_dim, 0) if h0_dim is not None else h0
    grads = linear_scan_gradients(
        along_time(a, a_dim), h0, along_time(h, h_dim), along_time(grad, grad_dim)
    )
    return grads, (1, 1, 0)


def parallel_scan(a: Tensor, b: Tensor, h0: Tensor, accumulate: torch.dtype | None = None):
    """The same h as linear_scan, by a prefix scan over the affine maps (module docstring).

    After round k, (A_t, B_t) is the composition of the maps of steps t − 2^k + 1 .. t, so
    h_t = B_t once 2^k ≥ T (h0 is folded into step 0's map). ``accumulate``: a dtype to scan
    in (float64 for float32 input), the result cast back."""
    dtype = b.dtype
    if accumulate is not None:
        a, b, h0 = a.to(accumulate), b.to(accumulate), h0.to(accumulate)
    B = torch.cat([torch.addcmul(b[:1], a[:1], h0.unsqueeze(0)), b[1:]])
    A = a
    span = 1
    while span < a.shape[0]:
        # Step t composes with the map 2^k steps before it: (A', B') ∘ (A, B) = (A A', A B' + B).
        B = torch.cat([B[:span], torch.addcmul(B[span:], A[span:], B[:-span])])
        if 2 * span < a.shape[0]:  # the last round needs no A
            A = torch.cat([A[:span], A[span:] * A[:-span]])
        span *= 2
    return B.to(dtype)
