"""The API a recurrent cell is written in: its parameters and one step, in plain torch ops.

A cell is a subclass of :class:`Cell` that says

    gates         the blocks of the input-side product W_ih x_t + b_ih, in stacking order
                  (the LSTM's ("i", "f", "g", "o")): W_ih is (len(gates)·H, I)
    hidden_gates  the blocks of the hidden-side product W_hh h_{t-1} + b_hh (default: the
                  same as gates; () for a cell with no hidden matrix, such as minGRU)
    states        what the cell carries from step to step, h first (default ("h",); the
                  LSTM's ("h", "c")); each is (B, H)
    parameters    any further parameters of one layer and direction, name -> Weight
                  (a shape in units of "H", and how it starts)

and writes ``step(x, hh, state, p)``: from this step's input side ``x`` (B, G·H), its hidden
side ``hh`` (B, G_h·H; None without a hidden matrix), the state (a tuple in the order of
``states``) and the parameters ``p`` (``p.name``), it returns the new state and the gate
activations to record, by name. Autograd differentiates the step, so no backward is written,
and every part of rnnkit (layers with torch.nn's interface, packing, directions, dropout,
``.trace()``, exact second order, the command line, the tasks, the tools) runs it.

A LayerNorm LSTM, for example::

    class LayerNormLSTM(Cell):
        gates = ("i", "f", "g", "o")
        states = ("h", "c")
        parameters = {"ln_x": Weight(("4H",), init="ones"), "ln_h": Weight(("4H",), "ones"),
                      "ln_c": Weight(("H",), "ones"), "ln_c_bias": Weight(("H",), "zeros")}

        def step(self, x, hh, state, p):
            h, c = state
            gates = layer_norm(x, p.ln_x) + layer_norm(hh, p.ln_h)
            i, f, g, o = gates.chunk(4, dim=-1)
            i, f, g, o = σ(i), σ(f), tanh(g), σ(o)
            c = f * c + i * g
            h = o * tanh(layer_norm(c, p.ln_c, p.ln_c_bias))
            return (h, c), {"i": i, "f": f, "g": g, "o": o}

A definition is checked once, when a layer or cell is built from it (:func:`check_cell`): a
gate name used twice, a step that returns the wrong number of states, a state or gate of the
wrong shape is one clear ``ValueError`` naming the cell, never a shape error deep in a loop.
"""

import math
from dataclasses import dataclass

import torch
from torch import Tensor

INITS = ("uniform", "ones", "zeros", "unit_uniform")


@dataclass(frozen=True)
class Weight:
    """A parameter of one layer and direction beyond W_ih, W_hh and their biases.

    shape: sizes, each an int or a multiple of the hidden size written "H", "4H", ...;
    init: "uniform" (±1/sqrt(H), torch.nn's rule for every RNN parameter), "ones", "zeros"
    or "unit_uniform" (uniform in [0, 1], e.g. IndRNN's recurrent weights).
    """

    shape: tuple[int | str, ...]
    init: str = "uniform"

    def size(self, hidden_size: int, proj_size: int = 0) -> tuple[int, ...]:
        return tuple(_resolve(dim, hidden_size, proj_size) for dim in self.shape)


def _resolve(dim: int | str, hidden_size: int, proj_size: int) -> int:
    if isinstance(dim, int):
        return dim
    letter = dim[-1]
    size = {"H": hidden_size, "P": proj_size or hidden_size}.get(letter)
    multiple = dim[:-1] or "1"
    if size is None or not multiple.isdigit():
        raise ValueError(f"a Weight's size is an int or 'H', '4H', 'P', ...; got {dim!r}")
    return int(multiple) * size


class Parameters:
    """One layer and direction's parameters, as the step reads them: ``p.ln_x``, and
    ``p.get(name)`` for one that may be absent (the LSTM's projection)."""

    def __init__(self, tensors: dict[str, Tensor]) -> None:
        self.__dict__.update(tensors)

    def get(self, name: str) -> Tensor | None:
        return self.__dict__.get(name)


class Cell:
    """The base of every cell definition (see the module docstring)."""

    name = ""  # the command line's name (--cell NAME)
    paper = ""  # one line: where the equations come from
    gates: tuple[str, ...] = ()
    hidden_gates: tuple[str, ...] | None = None  # None: the same blocks as gates
    states: tuple[str, ...] = ("h",)
    parameters: dict[str, Weight] = {}  # noqa: RUF012 (a class-level declaration, never mutated)
    projectable = False  # takes proj_size (h_t = W_hr (...)), as torch.nn.LSTM does
    kernel: str | None = None  # the name of its registered fast paths (built-in cells only)
    linear = False  # h_t = a_t ⊙ h_{t-1} + b_t from x_t alone (cells/linear.py: solved by a scan)
    gate_names: tuple[str, ...] = ()  # what step records, found when the cell is checked

    def step(
        self, x: Tensor, hh: Tensor | None, state: tuple[Tensor, ...], p: Parameters
    ) -> tuple[tuple[Tensor, ...] | Tensor, dict[str, Tensor]]:
        raise NotImplementedError(f"{type(self).__name__} must define step(x, hh, state, p)")

    # -- what the machinery reads ------------------------------------------------------------

    @property
    def recurrent_gates(self) -> tuple[str, ...]:
        return self.gates if self.hidden_gates is None else self.hidden_gates

    def weight_shapes(
        self, input_size: int, hidden_size: int, proj_size: int, bias: bool
    ) -> dict[str, tuple[int, ...]]:
        """Every parameter of one layer and direction, in registration order (torch.nn's for
        the built-in cells, so the same seed draws the same weights)."""
        out = proj_size or hidden_size  # the size of h_t
        shapes = {"weight_ih": (len(self.gates) * hidden_size, input_size)}
        rows = len(self.recurrent_gates) * hidden_size
        if self.recurrent_gates:
            shapes["weight_hh"] = (rows, out)
        if bias:
            shapes["bias_ih"] = (len(self.gates) * hidden_size,)
            if self.recurrent_gates:
                shapes["bias_hh"] = (rows,)
        for name, weight in self.extra_parameters(proj_size).items():
            shapes[name] = weight.size(hidden_size, proj_size)
        return shapes

    def extra_parameters(self, proj_size: int) -> dict[str, Weight]:
        """The parameters beyond the products (the LSTM adds weight_hr when projecting)."""
        return dict(self.parameters)

    def init_of(self, name: str) -> str:
        weight = self.extra_parameters(1).get(name)
        return weight.init if weight is not None else "uniform"

    def state_sizes(self, hidden_size: int, proj_size: int) -> tuple[int, ...]:
        """The size of each state: h is P (proj_size or H), the others H."""
        return tuple(
            (proj_size or hidden_size) if k == 0 else hidden_size for k in range(len(self.states))
        )

    def run_step(self, x, hh, state, p) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
        """``step`` with its state always a tuple (a one-state cell may return h alone)."""
        new_state, gates = self.step(x, hh, state, p)
        if isinstance(new_state, Tensor):
            new_state = (new_state,)
        return tuple(new_state), gates

    @property
    def label(self) -> str:
        return self.name or type(self).__name__

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def initialise(weight: Tensor, init: str, hidden_size: int) -> None:
    """Fill one parameter as its Weight says ("uniform" is torch.nn's rule)."""
    with torch.no_grad():
        if init == "ones":
            weight.fill_(1.0)
        elif init == "zeros":
            weight.zero_()
        elif init == "unit_uniform":
            weight.uniform_(0.0, 1.0)
        else:
            bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
            weight.uniform_(-bound, bound)


def check_cell(cell: object) -> "Cell":
    """The definition, checked by its declarations and one step on a small batch; a
    ValueError that names the cell and the fix otherwise."""
    if isinstance(cell, type) and issubclass(cell, Cell):
        cell = cell()
    if not isinstance(cell, Cell):
        raise TypeError(
            f"a cell must be a rnnkit.cells.Cell (a subclass or an instance), got "
            f"{type(cell).__name__}: write `class MyCell(Cell)` with gates and step()"
        )
    label = cell.label
    if type(cell).step is Cell.step:
        raise ValueError(f"cell {label}: define step(self, x, hh, state, p)")
    declared = {
        "gates": cell.gates,
        "hidden_gates": cell.recurrent_gates,
        "states": cell.states,
        "parameters": tuple(cell.parameters),
    }
    for what, names in declared.items():
        if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"cell {label}: {what} must be a tuple of names, got {names!r}")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(
                f"cell {label}: the {what} name {', '.join(map(repr, repeated))} is used twice; "
                "give every one its own name"
            )
    if not cell.gates:
        raise ValueError(f"cell {label}: gates is empty; name the blocks of W_ih x_t")
    if not cell.states or cell.states[0] != "h":
        raise ValueError(
            f"cell {label}: states must start with 'h' (the output), got {cell.states!r}"
        )
    if cell.linear and (cell.states != ("h",) or cell.recurrent_gates):
        raise ValueError(
            f"cell {label}: a linear cell has the one state h and no hidden matrix "
            f"(states = ('h',), hidden_gates = ()), got states {cell.states!r} and hidden_gates "
            f"{cell.recurrent_gates!r}"
        )
    reserved = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"} & set(cell.parameters)
    if reserved:
        raise ValueError(f"cell {label}: parameter names {sorted(reserved)} are taken")
    cell.gate_names = _check_one_step(cell)
    return cell


def _check_one_step(cell: Cell, batch: int = 2, hidden: int = 3) -> tuple[str, ...]:
    """Run the step once on small tensors and check what it returns; the names of the gates
    it records."""
    label = cell.label
    # Its own generator: checking a cell must not move the global one (the same seed must
    # give the same initial weights as torch.nn).
    generator = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, dtype=torch.float64, generator=generator)

    shapes = cell.weight_shapes(5, hidden, 0, bias=True)
    params = Parameters({name: rand(*shape) for name, shape in shapes.items()})
    x = rand(batch, len(cell.gates) * hidden)
    rows = len(cell.recurrent_gates) * hidden
    hh = rand(batch, rows) if rows else None
    state = tuple(rand(batch, hidden) for _ in cell.states)
    try:
        new_state, gates = cell.run_step(x, hh, state, params)
    except Exception as error:  # the user's code: say whose step failed and with what
        raise ValueError(
            f"cell {label}: step(x, hh, state, p) failed on x {tuple(x.shape)}, hh "
            f"{None if hh is None else tuple(hh.shape)}, state of {len(state)} tensor(s) "
            f"({batch}, {hidden}): {type(error).__name__}: {error}"
        ) from error
    if len(new_state) != len(cell.states):
        raise ValueError(
            f"cell {label}: step returned {len(new_state)} state tensor(s) but states is "
            f"{cell.states!r}; return one tensor per state, in that order"
        )
    for name, value in zip(cell.states, new_state, strict=True):
        if not isinstance(value, Tensor) or tuple(value.shape) != (batch, hidden):
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(
                f"cell {label}: step returned state {name!r} of shape {got}, expected "
                f"(batch, hidden_size) = {(batch, hidden)}"
            )
    if not isinstance(gates, dict):
        raise ValueError(
            f"cell {label}: step must return (state, gates) with gates a dict name -> tensor, "
            f"got {type(gates).__name__}"
        )
    for name, value in gates.items():
        if name in cell.states:
            raise ValueError(f"cell {label}: gate {name!r} has the name of a state; rename it")
        if not isinstance(value, Tensor) or tuple(value.shape) != (batch, hidden):
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(
                f"cell {label}: step returned gate {name!r} of shape {got}, expected "
                f"(batch, hidden_size) = {(batch, hidden)}"
            )
    return tuple(gates)
