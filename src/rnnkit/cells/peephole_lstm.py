"""The peephole LSTM (Gers & Schmidhuber, Recurrent nets that time and count, IJCNN 2000)."""

import torch

from rnnkit.cells.definition import Cell, Weight

σ, tanh = torch.sigmoid, torch.tanh


class PeepholeLSTM(Cell):
    """The gates also look at the cell (diagonal peepholes p_i, p_f, p_o):
    i_t = σ(W_i x_t + U_i h_{t-1} + p_i ⊙ c_{t-1} + b_i),  f_t likewise with p_f,
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ tanh(W_g x_t + U_g h_{t-1} + b_g),
    o_t = σ(W_o x_t + U_o h_{t-1} + p_o ⊙ c_t + b_o),  h_t = o_t ⊙ tanh(c_t)."""

    name = "peephole_lstm"
    paper = "Gers & Schmidhuber, Recurrent nets that time and count, IJCNN 2000"
    gates = ("i", "f", "g", "o")
    states = ("h", "c")
    parameters = {  # noqa: RUF012
        "peep_i": Weight(("H",)),
        "peep_f": Weight(("H",)),
        "peep_o": Weight(("H",)),
    }

    def step(self, x, hh, state, p):
        h, c = state
        a_i, a_f, a_g, a_o = (x + hh).chunk(4, dim=-1)  # each (B, H)
        i = σ(a_i + p.peep_i * c)
        f = σ(a_f + p.peep_f * c)
        g = tanh(a_g)
        c = f * c + i * g
        o = σ(a_o + p.peep_o * c)
        h = o * tanh(c)
        return (h, c), {"i": i, "f": f, "g": g, "o": o}
