"""The character model one character at a time, for generation (one row or several).

Calling the model per character (``model(ids[:, t:t+1], state)``) pays, every step, for a
module call, the input checks, the input projection of the first layer and, on the fused
path, a kernel set-up made for long sequences. Generating text needs none of that, so the
:class:`Stepper` precomputes what it can and runs each step as a few calls:

    layer 0:   x_proj = T[c_t]            T = E W_ihᵀ + b (V × G·H): the embedding folded
                                          into the first layer's input projection, a row
                                          lookup instead of a matrix product
    layer l>0: x_proj = W_ih h^(l-1)_t + b
    each layer: one call of the engine's forward loop for one step (rnnkit.engine: the C++
                loop where it built: the recurrent product and the gates in one call)
    head:      logits = W h^(L-1)_t + b

b = b_ih + b_hh for the LSTM and the RNN (both enter every gate the same way) and b_ih for the
GRU (its b_hn sits inside r ⊙ (W_hn h + b_hn) and is passed to the loop). Same numbers as
``model(...)`` up to round-off (tests compare them).
"""

import torch
from torch import Tensor

from rnnkit.engine import compiled, gru, lstm, rnn
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
        self.kind = layer.kind
        self.relu = layer.nonlinearity == "relu"
        self.python_loops = {"LSTM": lstm, "GRU": gru, "RNN": rnn}[self.kind]
        self.w_ih, self.w_hh, self.bias, self.b_hh = [], [], [], []
        for weights in layer._direction_weights():
            w = weights[0]
            bias = w.b_ih
            if self.kind != "GRU" and bias is not None and w.b_hh is not None:
                bias = bias + w.b_hh
            if bias is None:
                bias = w.w_ih.new_zeros(w.w_ih.shape[0])
            b_hh = w.b_hh if w.b_hh is not None else w.w_hh.new_zeros(w.w_hh.shape[0])
            self.w_ih.append(w.w_ih.detach())
            self.w_hh.append(w.w_hh.detach().contiguous())
            self.bias.append(bias.detach())
            self.b_hh.append(b_hh.detach().contiguous())
        # The first layer reads an embedding: fold it into its input projection.
        self.table = torch.addmm(self.bias[0], model.embedding.weight, self.w_ih[0].t())
        self.head_weight = model.head.weight.detach()
        self.head_bias = model.head.bias.detach()
        self.hidden_size = layer.hidden_size

    def initial_state(self, rows: int = 1) -> State:
        zeros = self.table.new_zeros(len(self.w_hh), rows, self.hidden_size)
        return (zeros, zeros.clone()) if self.kind == "LSTM" else zeros

    @torch.no_grad()
    def step(self, symbols: int | Tensor, state: State | None) -> tuple[Tensor, State]:
        """One character per row in (an id, or ids (N,)), the next character's scores (N, V)
        and the new state out (each (L, N, H))."""
        symbols = torch.as_tensor(symbols).reshape(-1)  # (N,)
        rows = symbols.shape[0]
        if state is None:
            state = self.initial_state(rows)
        loops = compiled.loops_for(self.table, self.python_loops)
        hs, cs = state if self.kind == "LSTM" else (state, None)  # each (L, N, H)
        new_h, new_c = [], []
        x_proj = self.table[symbols].view(1, rows, -1)  # (T=1, N, G·H)
        h = x_proj  # replaced by each layer's output
        for layer, w_hh in enumerate(self.w_hh):
            if layer > 0:
                x_proj = torch.addmm(self.bias[layer], h, self.w_ih[layer].t()).view(1, rows, -1)
            if self.kind == "LSTM":
                *_, outputs, c = loops.lstm_forward(x_proj, hs[layer], cs[layer], w_hh, False)
                new_c.append(c)
            elif self.kind == "GRU":
                b_hh = self.b_hh[layer]
                _, _, outputs = loops.gru_forward(x_proj, hs[layer], w_hh, b_hh, False)
            else:
                (outputs,) = loops.rnn_forward(x_proj, hs[layer], w_hh, self.relu)
            h = outputs[0]  # (N, H)
            new_h.append(h)
        logits = torch.addmm(self.head_bias, h, self.head_weight.t())  # (N, V)
        h_state = torch.stack(new_h)
        return logits, ((h_state, torch.stack(new_c)) if self.kind == "LSTM" else h_state)
