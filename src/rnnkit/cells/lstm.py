"""The LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000), in
torch.nn.LSTM's gate order i, f, g, o."""

import torch
import torch.nn.functional as F

from rnnkit.cells.definition import Cell, Weight

σ, tanh = torch.sigmoid, torch.tanh


class LSTM(Cell):
    """
    i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)      input gate
    f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)      forget gate
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)   candidate cell
    o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)      output gate
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                     cell state: the long memory
    h_t = o_t ⊙ tanh(c_t)                               hidden state
    with proj_size > 0: h_t = W_hr (o_t ⊙ tanh(c_t)), W_hr (P, H), and h is (B, P)
    """

    name = "lstm"
    paper = "Hochreiter & Schmidhuber, Long short-term memory, Neural Computation 1997"
    gates = ("i", "f", "g", "o")
    states = ("h", "c")
    projectable = True
    kernel = "lstm"

    def extra_parameters(self, proj_size: int) -> dict[str, Weight]:
        return {"weight_hr": Weight(("P", "H"))} if proj_size else {}

    def step(self, x, hh, state, p):
        h, c = state
        i, f, g, o = (x + hh).chunk(4, dim=-1)  # each (B, H)
        i, f, g, o = σ(i), σ(f), tanh(g), σ(o)
        c = f * c + i * g
        h = o * tanh(c)
        if p.get("weight_hr") is not None:
            h = F.linear(h, p.weight_hr)  # (B, P)
        return (h, c), {"i": i, "f": f, "g": g, "o": o}
