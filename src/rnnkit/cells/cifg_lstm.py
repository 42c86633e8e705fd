"""The coupled input-forget gate LSTM (Greff et al., LSTM: a search space odyssey, 2017)."""

import torch

from rnnkit.cells.definition import Cell

σ, tanh = torch.sigmoid, torch.tanh


class CIFGLSTM(Cell):
    """One gate decides both what to forget and what to write: i_t = 1 − f_t.
    f_t = σ(W_f x_t + U_f h_{t-1} + b_f),  g_t = tanh(...),  o_t = σ(...),
    c_t = f_t ⊙ c_{t-1} + (1 − f_t) ⊙ g_t,  h_t = o_t ⊙ tanh(c_t)."""

    name = "cifg_lstm"
    paper = "Greff et al., LSTM: a search space odyssey, IEEE TNNLS 2017"
    gates = ("f", "g", "o")
    states = ("h", "c")

    def step(self, x, hh, state, p):
        h, c = state
        f, g, o = (x + hh).chunk(3, dim=-1)  # each (B, H)
        f, g, o = σ(f), tanh(g), σ(o)
        c = f * c + (1 - f) * g
        h = o * tanh(c)
        return (h, c), {"f": f, "g": g, "o": o}
