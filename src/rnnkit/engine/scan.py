"""The recurrence h_t = a_t ⊙ h_{t-1} + b_t solved for every t at once (cells/linear.py).

Two ways, the same numbers:

    sequential  one multiply-add per step over (B, H), under no autograd: a custom operator
                (``torch.ops.rnnkit.linear_scan``), so torch.compile holds it as one node and
                torch.export records it with T as a symbol. Fastest on a CPU, where the
                per-step work is small beside the input-side product.
    parallel    a prefix scan over the affine maps h ↦ a h + b (Hillis and Steele: log2(T)
                rounds, each composing every element with the one 2^k steps before it), in
                plain tensor operations: T-fold parallel work for a GPU.

Why not the log-space form (Heinsen's two cumulative sums, as minGRU's paper does)? It needs
log b, so a b of either sign (minGRU's candidate is linear in x) takes complex numbers or a
split into signs whose difference cancels, and a saturated gate (a = 0 exactly in float32 at
σ(17)) is log 0. Composing affine maps needs neither: every round is products and sums of the
values the sequential loop multiplies, so the two agree to round-off; a float32 call can be
scanned in float64 (``accumulate``) to hold float64 round-off over thousands of steps.

Gradients: the backward of the scan is the same scan run backwards in time,
g_t = ∂L/∂h_t + a_{t+1} ⊙ g_{t+1},  ∂L/∂a_t = g_t ⊙ h_{t-1},  ∂L/∂b_t = g_t,  ∂L/∂h_0 = a_1 ⊙ g_1,
written with the operator itself, so it is differentiable again (exact second order).
"""

import torch
from torch import Tensor


@torch.library.custom_op("rnnkit::linear_scan", mutates_args=())
def linear_scan(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """a, b (T, *S), h0 (*S) -> h (T, *S) with h_t = a_t ⊙ h_{t-1} + b_t, one step at a time."""
    out = torch.empty_like(b)
    h = h0
    for t in range(a.shape[0]):
        h = torch.addcmul(b[t], a[t], h, out=out[t])
    return out


@linear_scan.register_fake
def _(a, b, h0):
    return torch.empty_like(b)


def _setup(ctx, inputs, output) -> None:
    a, _, h0 = inputs
    ctx.save_for_backward(a, h0, output)


def _backward(ctx, grad: Tensor):
    a, h0, h = ctx.saved_tensors
    # g_t = grad_t + a_{t+1} g_{t+1}: the scan reversed in time, with a shifted by one step.
    a_next = torch.cat([a[1:], torch.zeros_like(a[:1])]).flip(0)
    g = linear_scan(a_next, grad.flip(0), torch.zeros_like(h0)).flip(0)
    previous = torch.cat([h0.unsqueeze(0), h[:-1]])
    return g * previous, g, a[0] * g[0]


linear_scan.register_autograd(_backward, setup_context=_setup)


@linear_scan.register_vmap
def _(info, in_dims, a, b, h0):
    # The loop runs along dim 0 over any trailing shape: put the vmapped dim at 1 (0 for h0).
    size = info.batch_size
    a_dim, b_dim, h_dim = in_dims
    a = a.movedim(a_dim, 1) if a_dim is not None else a.unsqueeze(1).expand(-1, size, *a.shape[1:])
    b = b.movedim(b_dim, 1) if b_dim is not None else b.unsqueeze(1).expand(-1, size, *b.shape[1:])
    h0 = h0.movedim(h_dim, 0) if h_dim is not None else h0.expand(size, *h0.shape)
    return linear_scan(a, b, h0), 1


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
