"""Any cell's time loop as one custom operator, for torch.compile and torch.export.

Traced as it is, a cell's Python loop is unrolled: the graph holds T copies of the step, so
compiling takes longer the longer the sequence, and a new length is a new graph (an exported
program runs only at the length it was exported at). Wrapped as an operator, the loop is one
node whose shapes come from its inputs, T a symbol: one graph for every length.

For each cell definition (and its extra parameters' names) this makes two operators,
``torch.ops.rnnkit.cell_loop_<name>_<hash>`` and its backward, named from the definition's
module, class and settings so that the same cell gets the same name in every process. Both run
the cell's own step (rnnkit.cells), nothing else:

    forward   the step per time step with no graph kept: (T, B, G·H) input projections and
              the initial states -> the outputs h_t (T, B, P) and the final states
    backward  the forward again under autograd, then autograd's gradients of it: the
              definition's own derivatives, no backward written by hand; when a graph of the
              gradient is being built (second order), that recomputation is itself recorded

Eagerly a layer runs its step loop directly (nn/recurrence.py, which keeps the graph of the
first pass instead of recomputing it); engine/dispatch.py routes here only under a compiler or
an exporter of torch's graphs (not jit.trace or ONNX, which know only torch's operators).
"""

import contextlib
import hashlib

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells import Cell, Parameters

_OPERATORS: dict[str, object] = {}


def cell_loop(
    cell: Cell,
    x_proj: Tensor,
    states: tuple[Tensor, ...],
    w_hh: Tensor | None,
    b_hh: Tensor | None,
    extra: dict[str, Tensor],
    reverse: bool,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """One direction of ``cell`` over (T, B, G·H) by its operator: (outputs, final states)."""
    operator = operator_for(cell, tuple(extra))
    output, *final = operator(x_proj, list(states), w_hh, b_hh, list(extra.values()), reverse)
    return output, tuple(final)


def step_loop(cell, x_proj, states, w_hh, b_hh, extra, reverse) -> list[Tensor]:
    """The cell's step over every time step of x_proj (T, B, G·H): [outputs, *final]."""
    params = Parameters(extra)
    state = tuple(states)
    outputs: list[Tensor | None] = [None] * x_proj.shape[0]
    order = range(x_proj.shape[0] - 1, -1, -1) if reverse else range(x_proj.shape[0])
    for t in order:
        hh = None if w_hh is None else F.linear(state[0], w_hh, b_hh)
        state, _ = cell.run_step(x_proj[t], hh, state, params)
        outputs[t] = state[0]
    if not outputs:
        return [x_proj.new_empty(0, *states[0].shape), *(s.clone() for s in states)]
    return [torch.stack(outputs), *state]  # type: ignore[arg-type]


@contextlib.contextmanager
def autograd_inside_an_operator():
    """An operator's kernel runs below autograd: the dispatcher leaves autograd's keys out
    (torch.enable_grad alone records nothing there). The backward kernel differentiates the
    cell's step by autograd, so for its duration those keys are let back in (torch's private
    dispatch-key guard: the one way to run autograd inside a custom operator's kernel)."""
    excluded = torch._C._dispatch_tls_local_exclude_set()
    for key in ("AutogradFunctionality", "ADInplaceOrView", "AutogradOther"):
        excluded = excluded.remove(getattr(torch._C.DispatchKey, key))
    included = torch._C._dispatch_tls_local_include_set()
    with torch._C._ForceDispatchKeyGuard(included, excluded), torch.enable_grad():
        yield


@torch.compiler.assume_constant_result
def operator_name(cell: Cell, extra_names: tuple[str, ...]) -> str:
    kind = type(cell)
    settings = repr(sorted((k, repr(v)) for k, v in vars(cell).items() if k != "gate_names"))
    identity = f"{kind.__module__}.{kind.__qualname__}|{settings}|{extra_names}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    label = "".join(c if c.isalnum() else "_" for c in cell.label.lower())
    return f"cell_loop_{label}_{digest}"


def operator_for(cell: Cell, extra_names: tuple[str, ...]):
    """The forward operator of ``cell`` (made and registered on first use: a layer makes it
    when it is built, since registering an operator inside a compiled region breaks the
    graph there)."""
    name = operator_name(cell, extra_names)
    if name not in _OPERATORS:
        _OPERATORS[name] = _register(cell, extra_names, name)
    return _OPERATORS[name]


def _register(cell: Cell, extra_names: tuple[str, ...], name: str):
    def by_name(extra: list[Tensor]) -> dict[str, Tensor]:
        return dict(zip(extra_names, extra, strict=True))

    # Each operator spells out its arguments: torch.library reads its schema from them.
    @torch.library.custom_op(f"rnnkit::{name}", mutates_args=())
    def forward(
        x_proj: Tensor,
        states: list[Tensor],
        w_hh: Tensor | None,
        b_hh: Tensor | None,
        extra: list[Tensor],
        reverse: bool,
    ) -> list[Tensor]:
        with torch.no_grad():
            return step_loop(cell, x_proj, states, w_hh, b_hh, by_name(extra), reverse)

    @forward.register_fake
    def _(x_proj, states, w_hh, b_hh, extra, reverse):
        output = x_proj.new_empty(x_proj.shape[0], *states[0].shape)
        return [output, *(torch.empty_like(s) for s in states)]

    def gradients(inputs, grads, create_graph: bool) -> list[Tensor | None]:
        """The gradient of every input tensor (None where an input is None), by autograd
        through a recomputed forward pass."""
        x_proj, states, w_hh, b_hh, extra, reverse = inputs
        with torch.enable_grad():
            leaves = [x_proj, *states, w_hh, b_hh, *extra]
            # Second order differentiates through the saved inputs themselves; otherwise
            # (and for an input autograd does not track) a fresh leaf stands for each.
            present = [t if create_graph and t.requires_grad else t.detach().requires_grad_()
                       for t in leaves if t is not None]  # fmt: skip
            it = iter(present)
            rebuilt = [None if t is None else next(it) for t in leaves]
            count = len(states)
            x, s = rebuilt[0], rebuilt[1 : 1 + count]
            w, b = rebuilt[1 + count], rebuilt[2 + count]
            outs = step_loop(cell, x, s, w, b, by_name(rebuilt[3 + count :]), reverse)
            pairs = [(o, g) for o, g in zip(outs, grads, strict=True) if g is not None]
            found = torch.autograd.grad(
                [o for o, _ in pairs], present, [g for _, g in pairs],
                allow_unused=True, create_graph=create_graph,
            )  # fmt: skip
        found = [
            torch.zeros_like(t) if g is None else g for g, t in zip(found, present, strict=True)
        ]
        it = iter(found)
        return [None if t is None else next(it) for t in leaves]

    @torch.library.custom_op(f"rnnkit::{name}_backward", mutates_args=())
    def backward_op(
        x_proj: Tensor,
        states: list[Tensor],
        w_hh: Tensor | None,
        b_hh: Tensor | None,
        extra: list[Tensor],
        reverse: bool,
        grads: list[Tensor],
    ) -> list[Tensor]:
        inputs = (x_proj, states, w_hh, b_hh, extra, reverse)
        with autograd_inside_an_operator():
            found = gradients(inputs, grads, False)
        return [g.detach() for g in found if g is not None]

    @backward_op.register_fake
    def _(x_proj, states, w_hh, b_hh, extra, reverse, grads):
        present = [x_proj, *states, w_hh, b_hh, *extra]
        return [torch.empty_like(t) for t in present if t is not None]

    def setup(ctx, inputs, output) -> None:
        x_proj, states, w_hh, b_hh, extra, reverse = inputs
        ctx.count, ctx.reverse = len(states), reverse
        ctx.has = (w_hh is not None, b_hh is not None)
        ctx.save_for_backward(x_proj, *states, *(t for t in (w_hh, b_hh) if t is not None), *extra)

    def backward(ctx, grads):
        saved = list(ctx.saved_tensors)
        x_proj, states = saved[0], saved[1 : 1 + ctx.count]
        rest = iter(saved[1 + ctx.count :])
        w_hh = next(rest) if ctx.has[0] else None
        b_hh = next(rest) if ctx.has[1] else None
        extra = list(rest)
        inputs = (x_proj, states, w_hh, b_hh, extra, ctx.reverse)
        shapes = [(x_proj.shape[0], *states[0].shape), *(s.shape for s in states)]
        grads = [x_proj.new_zeros(shape) if g is None else g
                 for shape, g in zip(shapes, grads, strict=True)]  # fmt: skip
        if torch.is_grad_enabled():  # a graph of the gradient: record the recomputation
            found = gradients(inputs, grads, True)
        else:
            it = iter(backward_op(x_proj, states, w_hh, b_hh, extra, ctx.reverse, grads))
            found = [None if t is None else next(it) for t in [x_proj, *states, w_hh, b_hh, *extra]]
        count = ctx.count
        return (found[0], found[1 : 1 + count], found[1 + count], found[2 + count],
                found[3 + count :], None)  # fmt: skip

    forward.register_autograd(backward, setup_context=setup)
    return forward
