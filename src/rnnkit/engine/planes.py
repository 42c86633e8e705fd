"""A traced step's ATen operators as operations on planes: the forward half of engine/derive.py.

Every value of the step becomes a list of *planes*, one per H-wide block of its last dimension
(``x`` of width 4H is four planes; ``chunk(4)`` picks them; a parameter of shape (H,) is one
plane, the same for every row; a number is a constant), and each operator becomes plane
operations: ``+``, ``-``, ``*``, ``/``, σ, tanh, relu, silu, exp, log, sqrt, a power with a
number for exponent, clamp, split, slice, cat, and a layer norm over the features, whose mean
and variance are sums over the row (ROW_SUM: a program with one runs a whole row at a time).
A step that uses anything else (another reduction, a product inside the step) raises
NotElementwise and keeps the traced loop.
Equal operations are made once (a value used twice is computed once).
"""

import operator
from dataclasses import dataclass

import torch

from rnnkit.engine.traced import NotTraceable, arguments_of

# Instruction codes: Code in kernels/derived_steps.cpp.
(LOAD, STORE, ACCUMULATE, CONSTANT, ADD, SUB, MUL, DIV, NEG, SIGMOID, TANH, RELU, EXP,
 AT_LEAST, AT_MOST, KEEP_IF_ABOVE, KEEP_IF_AT_LEAST, KEEP_IF_AT_MOST, LOAD_SCALAR,
 MOVE, ROW_SUM, RSQRT, POW, SQRT, LOG) = range(25)  # fmt: skip


class NotElementwise(Exception):
    """The step does something besides the plane operations (it keeps the traced loop)."""


@dataclass(eq=False)
class Node:
    """One plane operation: its code, input nodes, constant, and for a load its source and
    plane (``index``: creation order, which is a topological order)."""

    code: int
    inputs: tuple["Node", ...]
    k: float
    source: int
    plane: int
    index: int


@dataclass
class Planes:
    """A value of the step: one node per H-wide plane; ``scalar``: one value for every
    element (a number, a one-element parameter), which broadcasts to any number of planes."""

    nodes: list[Node]
    scalar: bool = False


class Builder:
    """The graph of plane operations, with equal operations made once (a value used twice is
    computed once) and the obvious simplifications of a derived gradient."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self._made: dict[tuple, Node] = {}

    def node(self, code: int, *inputs: Node, k: float = 0.0, source: int = -1, plane: int = -1):
        key = (code, tuple(id(n) for n in inputs), float(k), source, plane)
        if key not in self._made:
            made = Node(code, inputs, float(k), source, plane, len(self.nodes))
            self.nodes.append(made)
            self._made[key] = made
        return self._made[key]

    def made_load(self, code: int, source: int, plane: int) -> Node | None:
        """The load of (source, plane) if the graph has one (LOAD or LOAD_SCALAR)."""
        return self._made.get((code, (), 0.0, source, plane))

    def constant(self, value: float) -> Node:
        return self.node(CONSTANT, k=value)

    def add(self, a: Node | None, b: Node) -> Node:
        return b if a is None else self.node(ADD, a, b)

    def mul(self, a: Node, b: Node) -> Node:
        for x, y in ((a, b), (b, a)):
            if x.code == CONSTANT and x.k == 1.0:
                return y
        return self.node(MUL, a, b)


# -- the step's ATen operators as plane operations -------------------------------------------

Value = Planes | float | list[Planes]


def lower(graph: torch.fx.Graph, hidden: int, has_hidden_side: bool, states: int,
          extras: list[tuple[int, ...]], hidden_bias: bool, builder: Builder):  # fmt: skip
    """The forward graph: the new states' nodes (one plane each). Sources are numbered as the
    loop passes them: x, W_hh h (if any), the states, the parameters, then b_hh (if
    ``hidden_bias``: added here, so that the loop's product needs no copy of the bias)."""
    env: dict[torch.fx.Node, Value] = {}
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    widths = [_width(n) for n in placeholders]
    kinds = (
        ["x"] + (["hh"] if has_hidden_side else []) + ["state"] * states + ["extra"] * len(extras)
    )
    if len(kinds) != len(placeholders):
        raise NotElementwise("unexpected inputs")
    for source, (node, kind, width) in enumerate(zip(placeholders, kinds, widths, strict=True)):
        if (node.meta["val"].dim() > 1) == (kind == "extra"):
            raise NotElementwise(f"a {kind} input of {node.meta['val'].dim()} dimensions")
        if kind == "extra" and width == 1:
            env[node] = Planes([builder.node(LOAD_SCALAR, source=source, plane=0)], scalar=True)
            continue
        if width % hidden:
            raise NotElementwise(f"an input of width {width} is not a number of planes")
        planes = [builder.node(LOAD, source=source, plane=p) for p in range(width // hidden)]
        if kind == "hh" and hidden_bias:
            bias = len(placeholders)
            planes = [builder.node(ADD, n, builder.node(LOAD, source=bias, plane=p))
                      for p, n in enumerate(planes)]  # fmt: skip
        env[node] = Planes(planes)
    for node in graph.nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            (outputs,) = node.args
            result = [env.get(v) if isinstance(v, torch.fx.Node) else None for v in outputs]
            if not all(isinstance(v, Planes) and len(v.nodes) == 1 and not v.scalar
                       for v in result):  # fmt: skip
                raise NotElementwise("a state that is not one (B, H) plane")
            return [v.nodes[0] for v in result]  # type: ignore[union-attr]
        if node.op != "call_function":
            raise NotElementwise(f"{node.op} {node.target}")
        if node.target is operator.getitem:
            whole, index = node.args
            env[node] = env[whole][index]  # type: ignore[index]
            continue
        env[node] = _lower_operator(node, env, hidden, builder)
        _check_shape(node, env[node], hidden)
    raise NotElementwise("the step has no output")


def _width(node: torch.fx.Node) -> int:
    value = node.meta.get("val")
    if not isinstance(value, torch.Tensor) or value.dim() > 2:
        raise NotElementwise("an input that is not a matrix of rows or a vector")
    return value.shape[-1] if value.dim() else 1


def _check_shape(node: torch.fx.Node, value: Value, hidden: int) -> None:
    """What torch computed for this node has the shape the planes say (a broadcast the planes
    cannot express is caught here, not computed wrong)."""
    meta = node.meta.get("val")
    values = value if isinstance(value, list) else [value]
    metas = meta if isinstance(meta, list | tuple) else [meta]
    for v, m in zip(values, metas, strict=False):
        if v is None:
            continue  # a result the planes do not hold (a layer norm's mean): unused, or
            # an operator that reads it fails to lower
        if not isinstance(v, Planes) or not isinstance(m, torch.Tensor):
            raise NotElementwise(f"{node.target} makes a value the planes cannot hold")
        if m.dim() > 2:
            raise NotElementwise(f"{node.target} makes a tensor of {m.dim()} dimensions")
        width = m.shape[-1] if m.dim() else 1
        expected = 1 if v.scalar else len(v.nodes) * hidden
        if width != expected:
            raise NotElementwise(f"{node.target}: width {width}, planes say {expected}")


def _arguments(node: torch.fx.Node, env) -> dict:
    """The operator's arguments by their schema's names, traced values replaced by planes."""
    try:
        given = arguments_of(node)
    except NotTraceable as error:
        raise NotElementwise(str(error)) from error
    return {argument.name: _value(value, env) for argument, value in given}


def _value(value, env):
    if isinstance(value, torch.fx.Node):
        if value not in env:
            raise NotElementwise(f"{value} is not a value of the step")
        return env[value]
    if isinstance(value, list | tuple):
        return [_value(v, env) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, int | float):
        return value
    raise NotElementwise(f"an argument {value!r}")


def _lower_operator(node: torch.fx.Node, env, hidden: int, builder: Builder) -> Value:
    target = node.target
    if not isinstance(target, torch._ops.OpOverload):
        raise NotElementwise(f"{target}")
    name = target.overloadpacket.__name__
    args = _arguments(node, env)
    if name in ("add", "sub") and target._overloadname in ("Tensor", "Scalar"):
        other = _scaled(args["other"], args.get("alpha", 1), builder)
        return _binary(ADD if name == "add" else SUB, args["self"], other, builder)
    if name == "rsub" and target._overloadname in ("Tensor", "Scalar"):
        scaled = _scaled(args["self"], args.get("alpha", 1), builder)
        return _binary(SUB, args["other"], scaled, builder)
    if name in ("mul", "div") and target._overloadname in ("Tensor", "Scalar"):
        return _binary(MUL if name == "mul" else DIV, args["self"], args["other"], builder)
    unary = {"neg": NEG, "sigmoid": SIGMOID, "tanh": TANH, "relu": RELU, "exp": EXP,
             "sqrt": SQRT, "log": LOG}  # fmt: skip
    if name in unary and target._overloadname == "default":
        return _map(args["self"], lambda n: builder.node(unary[name], n))
    if name == "silu" and target._overloadname == "default":  # x σ(x)
        return _binary(MUL, args["self"], _map(args["self"], lambda n: builder.node(SIGMOID, n)),
                       builder)  # fmt: skip
    if name == "pow" and target._overloadname == "Tensor_Scalar":
        exponent = args["exponent"]
        if isinstance(exponent, bool) or not isinstance(exponent, int | float):
            raise NotElementwise(f"a power {exponent!r}")
        if exponent == 2:  # as torch computes it: x · x
            return _map(args["self"], lambda n: builder.node(MUL, n, n))
        return _map(args["self"], lambda n: builder.node(POW, n, k=exponent))
    if name == "clamp" and target._overloadname == "default":
        low, high = args["min"], args["max"]
        value = args["self"]
        if low is not None:
            value = _map(value, lambda n: builder.node(AT_LEAST, n, k=low))
        if high is not None:
            value = _map(value, lambda n: builder.node(AT_MOST, n, k=high))
        return value
    if name == "native_layer_norm" and target._overloadname == "default":
        return [_layer_norm(args, node, hidden, builder), None, None]
    if name in ("clone", "alias") and target._overloadname == "default":
        return args["self"]
    if name == "split" and target._overloadname == "Tensor":
        return _split(args["self"], args["dim"], node, hidden, size=args["split_size"])
    if name == "split_with_sizes" and target._overloadname == "default":
        return _split(args["self"], args["dim"], node, hidden, sizes=args["split_sizes"])
    if name == "slice" and target._overloadname == "Tensor":
        return _slice(args, node, hidden)
    if name == "cat" and target._overloadname == "default":
        parts = args["tensors"]
        if not _is_last_dim(node.args[0][0], args["dim"]) or any(p.scalar for p in parts):
            raise NotElementwise("cat along a dimension other than the features")
        return Planes([n for p in parts for n in p.nodes])
    raise NotElementwise(f"the operator {target} is not elementwise")


def _layer_norm(args, node, hidden: int, builder: Builder) -> Planes:
    """(x − μ) / sqrt(σ² + eps) · weight + bias over the features of each row, its planes
    summed lane by lane (ROW_SUM: the program then runs whole rows)."""
    value, shape = args["input"], args["normalized_shape"]
    if not isinstance(value, Planes) or value.scalar or len(shape) != 1:
        raise NotElementwise("a layer norm over more than the features")
    if shape[0] != len(value.nodes) * hidden:
        raise NotElementwise("a layer norm over part of the features")
    scale = builder.constant(1.0 / shape[0])

    def mean(planes: list[Node]) -> Node:
        total = None
        for plane in planes:
            total = builder.add(total, builder.node(ROW_SUM, plane))
        return builder.node(MUL, total, scale)

    mu = mean(value.nodes)
    centred = [builder.node(SUB, x, mu) for x in value.nodes]
    variance = mean([builder.node(MUL, c, c) for c in centred])
    rstd = builder.node(RSQRT, builder.node(ADD, variance, builder.constant(args["eps"])))
    result = Planes([builder.node(MUL, c, rstd) for c in centred])
    for name, code in (("weight", MUL), ("bias", ADD)):
        if args[name] is not None:
            result = _binary(code, result, args[name], builder)
    return result


def _scaled(value, alpha, builder: Builder):
    if alpha == 1:
        return value
    return _binary(MUL, value, float(alpha), builder)


def _as_planes(value, builder: Builder) -> Planes:
    if isinstance(value, Planes):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NotElementwise(f"an operand {value!r}")
    return Planes([builder.constant(float(value))], scalar=True)


def _binary(code: int, a, b, builder: Builder) -> Planes:
    a, b = _as_planes(a, builder), _as_planes(b, builder)
    if len(a.nodes) == len(b.nodes):
        pairs = zip(a.nodes, b.nodes, strict=True)
    elif a.scalar and len(a.nodes) == 1:
        pairs = ((a.nodes[0], n) for n in b.nodes)
    elif b.scalar and len(b.nodes) == 1:
        pairs = ((n, b.nodes[0]) for n in a.nodes)
    else:
        raise NotElementwise("operands of different widths")
    return Planes([builder.node(code, x, y) for x, y in pairs], a.scalar and b.scalar)


def _map(value, make) -> Planes:
    if not isinstance(value, Planes):
        raise NotElementwise("an elementwise operation on a number")
    return Planes([make(n) for n in value.nodes], value.scalar)


def _is_last_dim(tensor_node, dim: int) -> bool:
    value = tensor_node.meta.get("val") if isinstance(tensor_node, torch.fx.Node) else None
    return isinstance(value, torch.Tensor) and dim in (-1, value.dim() - 1)


def _split(value, dim, node, hidden, size=None, sizes=None) -> list[Planes]:
    if not isinstance(value, Planes) or value.scalar or not _is_last_dim(node.args[0], dim):
        raise NotElementwise("a split that is not of the features")
    total = len(value.nodes) * hidden
    if sizes is None:
        sizes = [min(size, total - start) for start in range(0, total, size)]
    if any(s % hidden for s in sizes):
        raise NotElementwise("a split that is not along planes")
    parts, start = [], 0
    for s in sizes:
        parts.append(Planes(value.nodes[start // hidden : (start + s) // hidden]))
        start += s
    return parts


def _slice(args, node, hidden) -> Planes:
    value = args["self"]
    if not isinstance(value, Planes) or value.scalar or not _is_last_dim(node.args[0], args["dim"]):
        raise NotElementwise("a slice that is not of the features")
    total = len(value.nodes) * hidden
    start, end, step = args["start"] or 0, args["end"], args["step"]
    end = total if end is None else min(end, total)
    if step != 1 or start % hidden or end % hidden:
        raise NotElementwise("a slice that is not along planes")
    return Planes(value.nodes[start // hidden : end // hidden])
