"""Any cell's step as a list of ATen operators, run by a C++ time loop.

A cell without registered loops runs its own Python step once per time step; on the CPU each
of a step's dozen small operations then costs a trip through Python. Here the step is traced
once (``make_fx``: the ATen operators the step calls, for the shapes and dtype of the call)
into a list that ``traced_direction`` (engine/kernels/traced_steps.cpp) runs at every step
through the dispatcher: the same operators in the same order, so the values are the step's,
and autograd records them as it records the step, so every gradient (second order included)
is the definition's. Nothing is written by hand per cell.

A step is traced at two batch sizes; it is used only if both give the same operators with the
same constants, so the list holds at every batch size of a packed batch. A step that calls
something the list cannot hold (an operator returning a number, a Python value computed from
a tensor) is not traced, and runs its own step as before.
"""

import operator

import torch
from torch import Tensor

from rnnkit.cells import Cell, Parameters

# How an argument is given: the codes of ArgumentKind in engine/kernels/traced_steps.cpp.
SLOT, NONE, INT, FLOAT, BOOL, INTS, TENSOR, INT_NUMBER, FLOAT_NUMBER, SLOTS = range(10)


class NotTraceable(Exception):
    """The step calls something the operator list cannot hold."""


def traced_step(loops, cell: Cell, x_proj: Tensor, hidden_side_width: int | None,
                state: tuple[Tensor, ...], extra: dict[str, Tensor]):  # fmt: skip
    """The compiled TracedStep of ``cell`` for calls like this one, or None where the step
    cannot be traced. Made once per cell class, settings and (widths, dtype, device), and kept
    on the class, so that every layer of a cell traces it once."""
    key = step_key(cell, x_proj, hidden_side_width, state, extra)
    programs = made_for(cell, TRACED)
    if key not in programs:
        programs[key] = _build(loops, cell, x_proj, hidden_side_width, state, extra)
    return programs[key]


def step_key(cell: Cell, x_proj: Tensor, hidden_side_width: int | None,
             state: tuple[Tensor, ...], extra: dict[str, Tensor]) -> tuple:  # fmt: skip
    """What a step traced for this call depends on: the cell's settings, the widths and
    parameter shapes, the dtype and the device."""
    return (settings_of(cell), x_proj.shape[-1], hidden_side_width,
            tuple(s.shape[-1] for s in state),
            tuple((name, tuple(v.shape)) for name, v in extra.items()), x_proj.dtype,
            x_proj.device)  # fmt: skip


def made_for(cell: Cell, what: str) -> dict:
    """What was made from the cell's class so far by key: its traced steps (TRACED) or
    derived programs (DERIVED, engine/derived_loop.py); None where the step did not give one."""
    kind = type(cell)
    if what not in vars(kind):
        setattr(kind, what, {})
    return vars(kind)[what]


TRACED, DERIVED = "_traced_steps", "_derived_steps"
FOUND = {TRACED, DERIVED, "gate_names"}  # what a cell holds that its class and settings decide


def settings_of(cell: Cell) -> tuple:
    """Everything a step may read besides its inputs: the attributes of the cell and of its
    classes (its methods included), plain values by value, others by identity. A trace bakes
    what the step read into constants, so a setting changed after a trace must make a new one."""
    found = {}
    for kind in reversed(type(cell).__mro__[:-1]):  # up from Cell, without object
        found.update({k: v for k, v in vars(kind).items() if not k.startswith("__")})
    found.update(vars(cell))
    return tuple(sorted((name, _by_value_or_identity(value)) for name, value in found.items()
                        if name not in FOUND))  # fmt: skip


def _by_value_or_identity(value):
    try:
        hash(value)
    except TypeError:  # a list, a dict: compared by identity
        return type(value).__name__, id(value)
    return value


def _build(loops, cell, x_proj, hidden_side_width, state, extra):
    try:
        first, second = (
            _operations(cell, x_proj, hidden_side_width, state, extra, rows) for rows in (2, 3)
        )
    except NotTraceable:
        return None
    if not _same(first, second):
        return None  # the step depends on the batch size: it keeps its own step
    slot_count, results, operations = first
    step = loops.TracedStep(slot_count, hidden_side_width is not None, results)
    for operation in operations:
        step.add(*operation)
    return step


def _operations(cell, x_proj, hidden_side_width, state, extra, rows):
    """Trace the step at ``rows`` rows: (slot count, result slots, the operations as
    TracedStep.add takes them)."""
    return _compile(step_graph(cell, x_proj, hidden_side_width, state, extra, rows))


def step_graph(cell, x_proj, hidden_side_width, state, extra, rows) -> torch.fx.Graph:
    """The ATen operators of one step at ``rows`` rows, as a graph whose inputs are x, the
    hidden side (if any), the states and the cell's own parameters, in that order (raises
    NotTraceable)."""
    from torch.fx.experimental.proxy_tensor import make_fx

    names = list(extra)
    has_hidden_side = hidden_side_width is not None

    def step(x, *rest):
        hidden_side = rest[0] if has_hidden_side else None
        rest = rest[1:] if has_hidden_side else rest
        current, values = rest[: len(state)], rest[len(state) :]
        new_state, _ = cell.run_step(x, hidden_side, tuple(current),
                                     Parameters(dict(zip(names, values, strict=True))))  # fmt: skip
        return tuple(new_state)

    # Fake tensors: nothing is computed (the random generator is not touched), and a step whose
    # Python reads a tensor's value (``if x.sum() > 0``) fails to trace instead of being
    # traced down one branch.
    like = {"dtype": x_proj.dtype, "device": x_proj.device}
    inputs = [torch.zeros(rows, x_proj.shape[-1], **like)]
    if has_hidden_side:
        inputs.append(torch.zeros(rows, hidden_side_width, **like))
    inputs += [torch.zeros(rows, s.shape[-1], **like) for s in state]
    inputs += [torch.zeros(v.shape, **like) for v in extra.values()]
    try:
        with torch.no_grad():
            graph = make_fx(step, tracing_mode="fake")(*inputs).graph
    except Exception as error:  # data-dependent Python, an unsupported call: its own step
        raise NotTraceable(str(error)) from error
    return graph


def _compile(graph):
    slots: dict[torch.fx.Node, int] = {}
    operations = []
    results = None
    for node in graph.nodes:
        if node.op == "placeholder":
            slots[node] = len(slots)
        elif node.op == "call_function" and node.target is operator.getitem:
            continue  # placed with the operation that made the value
        elif node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload):
            operations.append(_operation(node, slots))
        elif node.op == "output":
            (outputs,) = node.args
            if not all(isinstance(v, torch.fx.Node) and v in slots for v in outputs):
                raise NotTraceable("the step returns something that is not a computed tensor")
            results = [slots[v] for v in outputs]
        else:
            raise NotTraceable(f"{node.op} {node.target}")
    return len(slots), results, operations


def arguments_of(node: torch.fx.Node) -> list[tuple]:
    """(schema argument, value) for every argument of an operator node: as given, by keyword,
    or the schema's default (raises NotTraceable where none is)."""
    schema = node.target._schema  # type: ignore[union-attr]
    found = []
    for index, argument in enumerate(schema.arguments):
        if index < len(node.args):
            value = node.args[index]
        elif argument.name in node.kwargs:
            value = node.kwargs[argument.name]
        elif argument.has_default_value():
            value = argument.default_value
        else:
            raise NotTraceable(f"{schema.name}: no value for {argument.name}")
        found.append((argument, value))
    return found


def _operation(node, slots):
    schema = node.target._schema
    kinds, slot_of, ints, floats, int_lists, tensors = [], [], [], [], [], []
    for argument, value in arguments_of(node):
        kind, slot, number, real, numbers, tensor = _argument(value, argument, slots)
        kinds.append(kind)
        slot_of.append(slot)
        ints.append(number)
        floats.append(real)
        int_lists.append(numbers)
        tensors.append(tensor)
    outputs = []
    returns = [str(r.type) for r in schema.returns]
    for user in node.users:
        if user.op == "call_function" and user.target is operator.getitem:
            index = user.args[1]
            if len(returns) > 1:
                outputs.append((index, -1, _new_slot(user, slots, returns[index])))
            else:
                outputs.append((0, index, _new_slot(user, slots, "Tensor")))
        else:
            outputs.append((0, -1, _new_slot(node, slots, returns[0] if returns else "")))
            break
    return (schema.name, schema.overload_name, kinds, slot_of, ints, floats, int_lists,
            tensors, outputs)  # fmt: skip


def _new_slot(node, slots, kind: str) -> int:
    if kind != "Tensor":
        raise NotTraceable(f"a result of type {kind} is used")
    slots[node] = len(slots)
    return slots[node]


def _argument(value, argument, slots):
    """(kind, slot, int, float, int list, tensor) of one argument, the unused ones blank."""
    blank = [NONE, -1, 0, 0.0, [], torch.empty(0)]
    declared = str(argument.type)
    takes_tensor = declared in ("Tensor", "Optional[Tensor]")
    if declared in ("float", "Optional[float]") and isinstance(value, int):
        value = float(value)  # the boxed call reads a float argument as a float only
    if isinstance(value, torch.fx.Node):
        if value not in slots:
            raise NotTraceable(f"{value} is not a tensor computed by the step")
        blank[:2] = SLOT, slots[value]
    elif value is None:
        pass
    elif isinstance(value, bool):
        if takes_tensor:
            raise NotTraceable("a bool where a tensor goes")
        blank[0], blank[2] = BOOL, int(value)
    elif isinstance(value, int):
        blank[0], blank[2] = (INT_NUMBER if takes_tensor else INT), value
    elif isinstance(value, float):
        blank[0], blank[3] = (FLOAT_NUMBER if takes_tensor else FLOAT), value
    elif isinstance(value, torch.dtype | torch.layout | torch.memory_format):
        raise NotTraceable(f"a {type(value).__name__} argument")
    elif isinstance(value, list | tuple) and all(isinstance(v, torch.fx.Node) for v in value):
        if declared != "List[Tensor]" or not all(v in slots for v in value):
            raise NotTraceable("a list of values not computed by the step")
        blank[0], blank[4] = SLOTS, [slots[v] for v in value]
        if not value:
            raise NotTraceable("an empty tensor list")
    elif isinstance(value, list | tuple) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        blank[0], blank[4] = INTS, list(value)
    elif isinstance(value, Tensor):
        blank[0], blank[5] = TENSOR, value
    else:
        raise NotTraceable(f"an argument {value!r} of type {declared}")
    return tuple(blank)


def _same(first, second) -> bool:
    """Whether two traces are the same list: the same operators and constants (tensor
    constants compared by value)."""
    if first[:2] != second[:2] or len(first[2]) != len(second[2]):
        return False
    for a, b in zip(first[2], second[2], strict=True):
        if a[:7] != b[:7] or a[8] != b[8]:
            return False
        for x, y in zip(a[7], b[7], strict=True):
            if x.shape != y.shape or not torch.equal(x, y):
                return False
    return True
