"""Any elementwise cell's direction as one autograd Function: the hand-written loops' shape,
with the step and its backward derived from the cell's definition (engine/derive.py).

    forward, per step t:    hh_t = W_hh h_{t-1} + b_hh                  (one matrix product)
                            (h_t, s_t) = the cell's step                (one pass: the program)
    backward, t = T..1:     ∂x_t, ∂hh_t, ∂s_{t-1}, ∂p += the derived step's backward (one pass,
                            reading the σ, tanh and exp values the forward kept and
                            recomputing the rest from x_t, hh_t and the states before it)
                            ∂h_{t-1} += ∂hh_t W_hh                      (one matrix product)
    after the loop:         ∂W_hh = Σ_t ∂hh_tᵀ h_{t-1},  ∂b_hh = Σ_t ∂hh_t   (one product)
    second order:           a graph of the gradient recomputes the direction by the cell's
                            own step under autograd (the caller's ``by_the_step``)

The loops are kernels/derived_steps.cpp, over a packed batch (a batch of equal lengths is the
case of T equal batch sizes): each state is one (B, H) buffer that the rows running a step
update in place, so a sequence that has ended keeps its last state, and the gradients run
back the same way. Kept for the backward: every state before every step, the saved values,
and x_proj and hh_t only where the derived backward reads them; about what the hand-written
LSTM keeps. Taken on the CPU when the step is elementwise and no forward-mode tangent is open
(the Function has no forward-mode formula); any other call runs the traced loop
(engine/traced.py), which autograd records operator by operator.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from rnnkit.cells import Cell
from rnnkit.engine.bptt import backward_may_come, backward_needs_a_graph
from rnnkit.engine.derive import Derived, NotElementwise, derive
from rnnkit.engine.dispatch import forward_mode_open
from rnnkit.engine.second_order import differentiable_backward
from rnnkit.engine.traced import DERIVED, NotTraceable, made_for, step_graph, step_key


@dataclass
class Compiled:
    """A cell's derived programs, compiled for the C++ loops."""

    derived: Derived
    forward: object  # loops.Program
    forward_keeping: object
    backward: object


def derived_programs(loops, cell: Cell, x_proj: Tensor, hidden_side_width: int | None,
                     state: tuple[Tensor, ...], extra: dict[str, Tensor],
                     hidden_bias: bool) -> Compiled | None:  # fmt: skip
    """The cell's step as two programs for calls like this one, or None where the step is not
    elementwise (or not traceable). Made once per cell class, settings, widths, dtype and
    whether b_hh is there."""
    key = (*step_key(cell, x_proj, hidden_side_width, state, extra), hidden_bias)
    made = made_for(cell, DERIVED)
    if key not in made:
        made[key] = _compiled(loops, cell, x_proj, hidden_side_width, state, extra, hidden_bias)
    return made[key]


def _compiled(loops, cell, x_proj, hidden_side_width, state, extra, hidden_bias):
    hidden = state[0].shape[-1]
    if any(s.shape[-1] != hidden for s in state):
        return None  # a projected h (P ≠ H): the programs are over (B, H) planes
    gates = x_proj.shape[-1] // hidden
    hidden_gates = None if hidden_side_width is None else hidden_side_width // hidden
    shapes = [tuple(v.shape) for v in extra.values()]
    try:
        # Derived at two batch sizes and used only if the programs agree: a step whose Python
        # looks at the batch size would otherwise be baked for one size.
        graphs = [step_graph(cell, x_proj, hidden_side_width, state, extra, r) for r in (2, 3)]
        found = [
            derive(g, hidden, gates, hidden_gates, len(state), shapes, hidden_bias) for g in graphs
        ]
    except (NotTraceable, NotElementwise):
        return None
    if found[0] != found[1]:
        return None
    derived = found[0]
    programs = (derived.forward, derived.forward_keeping, derived.backward)
    return Compiled(derived, *(loops.Program(*p) for p in programs))


def derived_direction(loops, cell: Cell, x_proj: Tensor, batch_sizes: list[int],
                      initial: tuple[Tensor, ...], weights, reverse: bool,
                      by_the_step):  # fmt: skip
    """One direction over a packed batch (N, G·H) with its T batch sizes (equal lengths: [B]
    * T) by the derived loops, or None where they do not serve the call (a forward-mode
    tangent, a step that is not elementwise): then the caller runs the traced loop.
    ``weights``: the direction's DirectionWeights (nn/recurrence.py); ``by_the_step``: the same
    direction by the cell's own step under autograd, ``(x_proj, initial, w_hh, b_hh, extra) ->
    (outputs, *final)``, which second order recomputes. Returns (outputs (N, H), final)."""
    w_hh, b_hh, extra = weights.w_hh, weights.b_hh, weights.extra
    if not batch_sizes or forward_mode_open():  # the Function has no forward-mode formula
        return None
    width = None if w_hh is None else w_hh.shape[0]
    compiled = derived_programs(loops, cell, x_proj, width, initial, extra, b_hh is not None)
    if compiled is None:
        return None
    keep = backward_may_come(x_proj, w_hh, b_hh, *initial, *extra.values())
    setting = Setting(loops, compiled, cell, reverse, len(initial), tuple(extra), keep,
                      tuple(batch_sizes), by_the_step)  # fmt: skip
    outputs, *final = DerivedSequence.apply(x_proj, w_hh, b_hh, *initial, *extra.values(), setting)
    return outputs, tuple(final)


@dataclass(frozen=True)
class Setting:
    """What the Function needs besides tensors (passed last, so that the tensors' positions
    match ctx.needs_input_grad)."""

    loops: object
    compiled: Compiled
    cell: Cell
    reverse: bool
    states: int
    extra_names: tuple[str, ...]
    keep: bool  # a backward may come: keep what it needs (grad mode is off inside forward)
    batch_sizes: tuple[int, ...]
    by_the_step: object  # the direction by the cell's own step (second order)


class DerivedSequence(torch.autograd.Function):
    """x_proj (N, G·H) packed, w_hh, b_hh, the initial states, the cell's parameters, setting
    -> outputs (N, H) packed and the final states (B, H)."""

    @staticmethod
    def forward(ctx, x_proj, w_hh, b_hh, *rest):
        *tensors, setting = rest
        initial, extra = tensors[: setting.states], tensors[setting.states :]
        keep = setting.keep
        compiled = setting.compiled
        derived = compiled.derived
        outputs, hh, saved, *more = setting.loops.derived_forward(
            compiled.forward_keeping if keep else compiled.forward, x_proj.contiguous(),
            list(setting.batch_sizes), [s.contiguous() for s in initial], _contiguous(w_hh),
            _contiguous(b_hh), [e.contiguous().reshape(-1) for e in extra], setting.reverse,
            keep, keep and derived.reads_hh, derived.saved if keep else 0,
        )  # fmt: skip
        before, final = more[: setting.states], more[setting.states :]
        ctx.setting = setting
        ctx.reverse = setting.reverse  # what differentiable_backward reads
        ctx.gates_width = x_proj.shape[-1]
        if keep:
            # x_proj is the Function's input, saved for the second-order path; the first-order
            # loop reads it only where the derived backward does (derived.reads_x).
            ctx.save_for_backward(x_proj, w_hh, b_hh, *tensors, hh, saved, *before)
        return (outputs, *final)

    @staticmethod
    def backward(ctx, grad_outputs, *grad_final):
        setting: Setting = ctx.setting
        n, names = setting.states, setting.extra_names
        x_proj, w_hh, b_hh, *rest = ctx.saved_tensors
        initial, extra = rest[:n], rest[n : n + len(names)]
        hh, saved, *before = rest[n + len(names) :]
        if backward_needs_a_graph(grad_outputs, *grad_final):
            inputs = {"x_proj": x_proj, "w_hh": w_hh, "b_hh": b_hh}
            inputs.update({f"state{k}": s for k, s in enumerate(initial)})
            inputs.update({f"extra_{name}": e for name, e in zip(names, extra, strict=True)})
            grads = differentiable_backward(
                ctx, setting.cell, inputs, (grad_outputs, *grad_final),
                recompute=lambda **given: _by_the_step(setting, given),
            )  # fmt: skip
            return (*grads, None)
        compiled = setting.compiled
        derived = compiled.derived
        grad_x, grad_hh, *more = setting.loops.derived_backward(
            compiled.backward, x_proj.contiguous() if derived.reads_x else _EMPTY,
            ctx.gates_width, list(setting.batch_sizes), hh if derived.reads_hh else _EMPTY,
            saved, before, _contiguous(w_hh), _contiguous(b_hh),
            [e.contiguous().reshape(-1) for e in extra], derived.extra_widths,
            grad_outputs.contiguous(), [g.contiguous() for g in grad_final], setting.reverse,
            derived.hh_separate, derived.h_direct,
        )  # fmt: skip
        grad_initial, grad_rows = more[:n], more[n:]
        grad_w_hh = grad_b_hh = None
        if w_hh is not None:
            flat = grad_hh if derived.hh_separate else grad_x  # (N, G_h·H)
            if ctx.needs_input_grad[1]:
                grad_w_hh = flat.t() @ before[0]  # Σ_t ∂hh_tᵀ h_{t-1}, every row of every step
            if b_hh is not None and ctx.needs_input_grad[2]:
                grad_b_hh = flat.sum(0)
        grad_extra = [
            (rows.sum() if scalar else rows).reshape(e.shape)
            for rows, scalar, e in zip(grad_rows, derived.extra_scalar, extra, strict=True)
        ]
        return (grad_x, grad_w_hh, grad_b_hh, *grad_initial, *grad_extra, None)


_EMPTY = torch.empty(0)


def _contiguous(tensor: Tensor | None) -> Tensor | None:
    return None if tensor is None else tensor.contiguous()


def _by_the_step(setting: Setting, given: dict[str, Tensor]) -> tuple[Tensor, ...]:
    """The direction again by the cell's own step under autograd (for second order)."""
    extra = {name: given[f"extra_{name}"] for name in setting.extra_names}
    initial = tuple(given[f"state{k}"] for k in range(setting.states))
    return setting.by_the_step(given["x_proj"], initial, given["w_hh"], given["b_hh"], extra)
