"""A cell's step as two elementwise programs: its forward, and its backward derived from it.

Most cells are two matrix products and then elementwise operations: the LSTM's step, after
``x + hh``, is chunks, σ, tanh, products and sums of (B, H) blocks. Such a step runs as the
hand-written LSTM loop does (engine/derived_loop.py: per step one product and one pass over the
elements, backwards one pass and one product) once its elementwise part is a program, and its
backward another. Both are made here from the cell's own step, traced into ATen operators
(engine/traced.py's ``step_graph``), so nothing is written by hand per cell:

- the operators become operations on (B, H) planes (engine/planes.py, which says which
  operators it holds; any other keeps the traced loop);
- the backward is reverse-mode differentiation of those operations, written as more plane
  operations with torch's own derivative formulas (σ' = (1 − y) y, tanh' = 1 − y², relu and
  clamp let the gradient through where torch's do); the forward keeps the σ, tanh and exp
  values the backward reads, and the backward recomputes the rest;
- both programs get registers (a value's register is reused once the value is dead) and run in
  kernels/derived_steps.cpp, over blocks of rows and features, every instruction a vectorised
  loop.

Exact first order; a graph of the gradient (second order) recomputes the direction by the
step itself (engine/derived_loop.py), as the hand-written loops do.
"""

import math
from dataclasses import dataclass

import torch

from rnnkit.engine.planes import (
    ACCUMULATE,
    ADD,
    AT_LEAST,
    AT_MOST,
    CONSTANT,
    DIV,
    EXP,
    KEEP_IF_ABOVE,
    KEEP_IF_AT_LEAST,
    KEEP_IF_AT_MOST,
    LOAD,
    LOAD_SCALAR,
    LOG,
    MOVE,
    MUL,
    NEG,
    POW,
    RELU,
    ROW_SUM,
    RSQRT,
    SIGMOID,
    SQRT,
    STORE,
    SUB,
    TANH,
    Builder,
    Node,
    NotElementwise,
    lower,
)

# -- the derived backward ---------------------------------------------------------------------


def gradients(builder: Builder, forward: list[Node], seeds: dict[Node, Node]) -> dict[Node, Node]:
    """Reverse mode over the forward nodes: each node's gradient, from the seeds (the new
    states' incoming gradients), with torch's derivative formulas."""
    grads: dict[Node, Node] = {}

    def accumulate(node: Node, gradient: Node) -> None:
        grads[node] = builder.add(grads.get(node), gradient)

    for node, seed in seeds.items():
        accumulate(node, seed)
    one = builder.constant(1.0)
    for y in reversed(forward):
        g = grads.get(y)
        if g is None or y.code in (LOAD, LOAD_SCALAR, CONSTANT):
            continue
        a = y.inputs[0]
        b = y.inputs[1] if len(y.inputs) > 1 else None
        if y.code == ADD:
            accumulate(a, g)
            accumulate(b, g)
        elif y.code == SUB:
            accumulate(a, g)
            accumulate(b, builder.node(NEG, g))
        elif y.code == MUL:
            accumulate(a, builder.mul(g, b))
            accumulate(b, builder.mul(g, a))
        elif y.code == DIV:
            accumulate(a, builder.node(DIV, g, b))
            accumulate(b, builder.node(NEG, builder.node(DIV, builder.mul(g, y), b)))
        elif y.code == NEG:
            accumulate(a, builder.node(NEG, g))
        elif y.code == SIGMOID:  # torch: grad · (1 − y) · y
            accumulate(a, builder.mul(builder.mul(g, builder.node(SUB, one, y)), y))
        elif y.code == TANH:  # torch: grad · (1 − y²)
            accumulate(a, builder.mul(g, builder.node(SUB, one, builder.mul(y, y))))
        elif y.code == RELU:  # torch: the gradient where the result is > 0
            accumulate(a, builder.node(KEEP_IF_ABOVE, y, g, k=0.0))
        elif y.code == EXP:
            accumulate(a, builder.mul(g, y))
        elif y.code == POW:  # torch: grad · k · x^(k−1), and 0 for k = 0
            if y.k != 0:
                power = builder.node(POW, a, k=y.k - 1)
                accumulate(a, builder.mul(g, builder.mul(builder.constant(y.k), power)))
        elif y.code == SQRT:  # torch: grad / (2 y)
            accumulate(a, builder.node(DIV, g, builder.mul(builder.constant(2.0), y)))
        elif y.code == LOG:  # grad / x
            accumulate(a, builder.node(DIV, g, a))
        elif y.code == ROW_SUM:  # every lane of the row received the sum
            accumulate(a, builder.node(ROW_SUM, g))
        elif y.code == RSQRT:  # d(v^-1/2) = -1/2 · y³
            cube = builder.mul(builder.mul(y, y), y)
            accumulate(a, builder.mul(builder.mul(g, builder.constant(-0.5)), cube))
        elif y.code == AT_LEAST:  # clamp(min): the gradient where the input is >= min
            accumulate(a, builder.node(KEEP_IF_AT_LEAST, a, g, k=y.k))
        elif y.code == AT_MOST:
            accumulate(a, builder.node(KEEP_IF_AT_MOST, a, g, k=y.k))
        else:
            raise NotElementwise(f"no derivative for instruction {y.code}")
    return grads


# -- programs -----------------------------------------------------------------------------------


def program(
    stores: list[tuple[int, int, int, Node]], leaves: dict[int, tuple[int, int]] | None = None
):
    """The instructions that compute the stored nodes ((code, target, plane, node) each), in
    creation order with only what they need, and the number of registers: a register is free
    again after its value's last use (never the destination of the instruction that reads it
    last: the C++ loops take their operands as non-aliasing). ``leaves``: nodes (by id) that
    are loaded from (source, plane) instead of computed (the forward's saved values)."""
    leaves = leaves or {}
    order = sorted(_closure(stores, leaves), key=lambda n: n.index)
    last_use: dict[int, int] = {}
    for position, node in enumerate(order):
        for source in _inputs(node, leaves):
            last_use[id(source)] = position
    for *_, node in stores:
        last_use[id(node)] = len(order)
    register: dict[int, int] = {}
    free: list[int] = []
    count = 0
    instructions = []
    for position, node in enumerate(order):
        if free:
            register[id(node)] = free.pop()
        else:
            register[id(node)] = count
            count += 1
        if id(node) in leaves:
            instructions.append((LOAD, register[id(node)], *leaves[id(node)], 0, 0.0))
        else:
            instructions.append(_instruction(node, register))
        for source in {id(s) for s in _inputs(node, leaves)}:
            if last_use[source] == position:
                free.append(register[source])
    # A register that holds a load points at its source (kernels/derived_steps.cpp); a stored
    # load is copied first, so that no store reads memory an earlier store wrote.
    moved: dict[int, int] = {}
    for *_, node in stores:
        if (node.code == LOAD or id(node) in leaves) and id(node) not in moved:
            moved[id(node)] = count
            instructions.append((MOVE, count, register[id(node)], 0, 0, 0.0))
            count += 1
    for code, target, plane, node in stores:
        value = moved.get(id(node), register[id(node)])
        instructions.append((code, 0, target, plane, value, 0.0))
    return max(count, 1), instructions


def _inputs(node: Node, leaves) -> tuple[Node, ...]:
    return () if id(node) in leaves else node.inputs


def _closure(stores, leaves=None) -> list[Node]:
    """Every node the stored ones need, down to loads, constants and ``leaves``."""
    seen: dict[int, Node] = {}
    stack = [node for *_, node in stores]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen[id(node)] = node
            stack.extend(_inputs(node, leaves or {}))
    return list(seen.values())


def _instruction(node: Node, register: dict[int, int]) -> tuple:
    if node.code in (LOAD, LOAD_SCALAR):
        return (node.code, register[id(node)], node.source, node.plane, 0, 0.0)
    operands = [register[id(n)] for n in node.inputs] + [0, 0]
    return (node.code, register[id(node)], operands[0], operands[1], 0, node.k)


# -- one cell's two programs ------------------------------------------------------------------

SAVED = (SIGMOID, TANH, EXP, SQRT)  # what the forward keeps for the backward, not recomputed


@dataclass
class Derived:
    """A cell's step as kernels/derived_steps.cpp runs it (made by :func:`derive`); each
    program as (registers, instructions), a Program's arguments."""

    forward: tuple[int, list[tuple]]  # the new states only (nothing to keep: inference)
    forward_keeping: tuple[int, list[tuple]]  # also the saved values of the step
    backward: tuple[int, list[tuple]]
    saved: int  # planes the forward keeps per step: the SAVED values the backward reads
    reads_x: bool  # the backward reads x_t (else x_proj need not be kept)
    reads_hh: bool  # ... and W_hh h_{t-1}
    hh_separate: bool  # ∂hh is not ∂x (else the loop reads ∂x's rows for W_hh's gradient)
    h_direct: bool  # the step reads h other than through hh
    extra_widths: list[int]  # the width of each parameter's gradient rows
    extra_scalar: list[bool]  # a one-element parameter (its rows summed whole)


def derive(graph: torch.fx.Graph, hidden: int, gates: int, hidden_gates: int | None,
           states: int, extras: list[tuple[int, ...]], hidden_bias: bool) -> Derived:  # fmt: skip
    """The forward and backward programs of a traced step (raises NotElementwise).

    Sources, as the loops pass them: x_t, W_hh h_{t-1} (if any), the states before the step,
    the parameters, b_hh (if any); the backward also the output's gradient, each state's
    carried gradient, and the saved values. Targets: the forward's new states, h again (the
    output rows), then the saved values; the backward's ∂x_t, ∂hh_t (if not ∂x_t), each
    state's carried gradient, then each parameter's gradient (accumulated)."""
    builder = Builder()
    has_hh = hidden_gates is not None
    hidden_bias = hidden_bias and has_hh
    new_states = lower(graph, hidden, has_hh, states, extras, hidden_bias, builder)
    forward_nodes = list(builder.nodes)
    # every state into its buffer, then h again into the output rows
    forward_stores = [(STORE, s, 0, node) for s, node in enumerate(new_states)]
    forward_stores.append((STORE, states, 0, new_states[0]))

    first_state = 1 + has_hh
    first_extra = first_state + states
    grad_output = first_extra + len(extras) + hidden_bias
    carried = [grad_output + 1 + s for s in range(states)]
    saved_source = carried[-1] + 1
    seeds: dict[Node, Node] = {}
    for s, node in enumerate(new_states):
        seed = builder.node(LOAD, source=carried[s], plane=0)
        if s == 0:
            seed = builder.node(ADD, builder.node(LOAD, source=grad_output, plane=0), seed)
        seeds[node] = builder.add(seeds.get(node), seed)
    grads = gradients(builder, forward_nodes, seeds)
    zero = builder.constant(0.0)

    def gradient_of(source: int, plane: int, code: int = LOAD) -> Node | None:
        load = builder.made_load(code, source, plane)
        return None if load is None else grads.get(load)

    x_grads = [gradient_of(0, p) for p in range(gates)]
    hh_grads = [gradient_of(1, p) for p in range(hidden_gates or 0)]
    hh_separate = has_hh and (
        len(hh_grads) != len(x_grads)
        or any(a is not b for a, b in zip(x_grads, hh_grads, strict=True))
    )
    stores = [(STORE, 0, p, g or zero) for p, g in enumerate(x_grads)]
    target = 1
    if hh_separate:
        stores += [(STORE, 1, p, g or zero) for p, g in enumerate(hh_grads)]
        target = 2
    h_direct = True
    for s in range(states):
        g = gradient_of(first_state + s, 0)
        if s == 0 and g is None and has_hh:
            h_direct = False  # the loop writes ∂h_{t-1} = ∂hh W_hh
        else:
            stores.append((STORE, target + s, 0, g or zero))
    target += states
    widths, scalars = [], []
    for e, shape in enumerate(extras):
        source = first_extra + e
        scalar = math.prod(shape) == 1
        planes = 1 if scalar else math.prod(shape) // hidden
        for p in range(planes):
            g = gradient_of(source, p, LOAD_SCALAR if scalar else LOAD)
            if g is not None:
                stores.append((ACCUMULATE, target + e, p, g))
        widths.append(planes * hidden)
        scalars.append(scalar)

    # The forward's σ, tanh, exp and sqrt values that the backward reads are kept, not
    # recomputed.
    forward_ids = {id(n) for n in forward_nodes}
    kept = sorted(
        (n for n in _closure(stores) if id(n) in forward_ids and n.code in SAVED),
        key=lambda n: n.index,
    )
    leaves = {id(n): (saved_source, plane) for plane, n in enumerate(kept)}
    backward_nodes = _closure(stores, leaves)
    loads = {n.source for n in backward_nodes if n.code == LOAD and id(n) not in leaves}
    keeping = forward_stores + [(STORE, states + 1, plane, n) for plane, n in enumerate(kept)]
    return Derived(
        program(forward_stores),
        program(keeping),
        program(stores, leaves),
        len(kept),
        0 in loads,
        has_hh and 1 in loads,
        hh_separate,
        h_direct,
        widths,
        scalars,
    )
