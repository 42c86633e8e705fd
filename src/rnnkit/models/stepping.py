"""The character model one character at a time, for generation (one row or several).

Calling the model per character (``model(ids[:, t:t+1], state)``) pays, every step, for a
module call, the input checks, the input projection of the first layer and, on the fused
path, a kernel set-up made for long sequences. Generating text needs none of that, so the
:class:`Stepper` precomputes what it can and runs each step as a few calls:

    layer 0:   x_proj = T[c_t]            T = E W_ihᵀ + b (V × G·H): the embedding folded
                                          into the first layer's input projection, a row
                                          lookup instead of a matrix product
    layer l>0: x_proj = W_ih h^(l-1)_t + b
    each layer: for RNN, LSTM and GRU one call of the engine's forward loop for one step
                (rnnkit.engine: the C++ loop where it built: the recurrent product and the
                gates in one call); for any other cell its own step
    head:      logits = W h^(L-1)_t + b

b = b_ih + b_hh for the LSTM and the RNN (both enter every gate the same way) and b_ih for
every other cell (the GRU's b_hn sits inside r ⊙ (W_hn h + b_hn); it goes with W_hh h).
Same numbers as ``model(...)`` up to round-off (tests compare them).
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells import Parameters
from rnnkit.engine import compiled
from rnnkit.engine.derived_loop import derived_programs
from rnnkit.engine.dispatch import cell_steps
from rnnkit.engine.registered import REGISTERED, kernel_of
from rnnkit.engine.traced import traced_step
from rnnkit.models.charlm import CharLM, State


class Stepper:
    """Precomputed weights of a CharLM in eval mode; ``step(ids, state) -> (logits, state)``
    for one id or a batch of ids (one per row: several samples at once cost about as much as
    one, since a step is bound by reading the weights)."""

    @torch.no_grad()
    def __init__(self, model: CharLM) -> None:
        layer = model.rnn
        if layer.bidirectional or layer.proj_size:
            raise ValueError("stepping needs a unidirectional layer without projection")
        self.cell = layer.cell
        self.kernel = kernel_of(layer.cell)
        self.w_ih, self.w_hh, self.bias, self.b_hh, self.extra = [], [], [], [], []
        self.extra_values: list[list[Tensor]] = []  # self.extra's tensors, for the traced step
        self.traced: dict[int, object] = {}  # layer -> its traced step or None (traced_step)
        self.derived: dict[int, object] = {}  # layer -> its derived programs or None
        for weights in layer._direction_weights():
            w = weights[0]
            bias, b_hh = w.b_ih, w.b_hh
            # b_hh goes to the input side where a registered loop sums the two biases
            # (LSTM, RNN); any other cell gets it in its hidden side, where its step expects it
            registered = REGISTERED.get(self.kernel)
            if registered and registered.sums_biases and bias is not None and b_hh is not None:
                bias, b_hh = bias + b_hh, None
            if bias is None:
                bias = w.w_ih.new_zeros(w.w_ih.shape[0])
            self.w_ih.append(w.w_ih.detach())
            self.w_hh.append(None if w.w_hh is None else w.w_hh.detach().contiguous())
            self.bias.append(bias.detach())
            self.b_hh.append(None if b_hh is None else b_hh.detach().contiguous())
            self.extra.append(Parameters({k: v.detach() for k, v in w.extra.items()}))
            self.extra_values.append(list(vars(self.extra[-1]).values()))
        # The first layer reads an embedding: fold it into its input projection.
        self.table = torch.addmm(self.bias[0], model.embedding.weight, self.w_ih[0].t())
        self.head_weight = model.head.weight.detach()
        self.head_bias = model.head.bias.detach()
        self.hidden_size = layer.hidden_size
        self.state_count = len(layer.cell.states)  # several: the state is a tuple

    def initial_state(self, rows: int = 1) -> State:
        zeros = [self.table.new_zeros(len(self.w_ih), rows, self.hidden_size)
                 for _ in range(self.state_count)]  # fmt: skip
        return tuple(zeros) if self.state_count > 1 else zeros[0]

    def input_side(self, layer: int, symbols: Tensor, below: Tensor | None) -> Tensor:
        """W_ih x_t + b for this layer: a row of the folded table for the first, (N, G·H)."""
        if layer == 0:
            return self.table[symbols]
        return torch.addmm(self.bias[layer], below, self.w_ih[layer].t())

    @torch.no_grad()
    def step(self, symbols: int | Tensor, state: State | None) -> tuple[Tensor, State]:
        """One character per row in (an id, or ids (N,)), the next character's scores (N, V)
        and the new state out (each (L, N, H))."""
        symbols = torch.as_tensor(symbols).reshape(-1)  # (N,)
        if state is None:
            state = self.initial_state(symbols.shape[0])
        states = state if self.state_count > 1 else (state,)  # each (L, N, H)
        new_states: list[list[Tensor]] = [[] for _ in states]
        h = None
        for layer in range(len(self.w_ih)):
            x_proj = self.input_side(layer, symbols, h)  # (N, G·H)
            layer_state = tuple(s[layer] for s in states)
            layer_state = self.layer_step(layer, x_proj, layer_state)
            for k, s in enumerate(layer_state):
                new_states[k].append(s)
            h = layer_state[0]  # (N, H)
        logits = self.head(h)  # (N, V)
        stacked = tuple(torch.stack(s) for s in new_states)
        return logits, (stacked if self.state_count > 1 else stacked[0])

    def head(self, h: Tensor) -> Tensor:
        return torch.addmm(self.head_bias, h, self.head_weight.t())  # (N, V)

    def traced_step(self, layer: int, x_proj: Tensor, hh: Tensor | None, state):
        """The cell's step traced into ATen operators (engine/traced.py) for this layer, or
        None where the C++ steps are not used or the step cannot be traced. Looked up at the
        layer's first step and kept: finding it again costs more than a step at batch 1, and
        a stepper holds the model as it was when made."""
        if layer not in self.traced:
            loops = cell_steps(x_proj)
            width = None if hh is None else hh.shape[-1]
            self.traced[layer] = (
                None
                if loops is None
                else traced_step(loops, self.cell, x_proj, width, state, vars(self.extra[layer]))
            )
        return self.traced[layer]

    def derived_programs(self, layer: int, x_proj: Tensor, state: tuple[Tensor, ...]):
        """The cell's elementwise step as its derived forward program for this layer
        (engine/derived_loop.py), or None where the C++ steps are not used or the step is not
        elementwise. Looked up at the layer's first step and kept, as the traced step is."""
        if layer not in self.derived:
            loops = cell_steps(x_proj)
            w_hh, b_hh = self.w_hh[layer], self.b_hh[layer]
            width = None if w_hh is None else w_hh.shape[0]
            extra = vars(self.extra[layer])
            found = None if loops is None else derived_programs(
                loops, self.cell, x_proj, width, state, extra, b_hh is not None
            )  # fmt: skip
            flat = [v.contiguous().reshape(-1) for v in self.extra_values[layer]]
            self.derived[layer] = None if found is None else (loops, found, flat)
        return self.derived[layer]

    def layer_step(self, layer: int, x_proj: Tensor, state: tuple[Tensor, ...]):
        """One layer's step: the registered loop for one step where the cell has one (the
        recurrent product and the gates in one call), else the derived forward program of an
        elementwise step (the product and one pass in one call), else the cell's own step
        (traced into ATen operators where it can be)."""
        w_hh = self.w_hh[layer]
        if self.kernel is None:
            derived = self.derived_programs(layer, x_proj, state)
            if derived is not None:
                loops, programs, extra = derived
                found = loops.derived_forward(
                    programs.forward, x_proj, [x_proj.shape[0]], [s.contiguous() for s in state],
                    w_hh, self.b_hh[layer], extra, False, False, False, 0,
                )  # fmt: skip
                return tuple(found[-len(state) :])  # the final states
            hh = None if w_hh is None else F.linear(state[0], w_hh, self.b_hh[layer])
            traced = self.traced_step(layer, x_proj, hh, state)
            if traced is not None:  # the cell's step traced once, run in C++
                return tuple(traced.run(x_proj, hh, list(state), self.extra_values[layer]))
            new_state, _ = self.cell.run_step(x_proj, hh, state, self.extra[layer])
            return new_state
        registered = REGISTERED[self.kernel]
        loops = compiled.loops_for(self.table, registered.loops)
        return registered.forward_step(loops, x_proj, state, w_hh, self.b_hh[layer])
