"""The LayerNorm LSTM (Ba, Kiros & Hinton, Layer normalization, arXiv:1607.06450, 2016)."""

import torch
import torch.nn.functional as F

from rnnkit.cells.definition import Cell, Weight

σ, tanh = torch.sigmoid, torch.tanh


def layer_norm(x, gain, bias=None):
    return F.layer_norm(x, x.shape[-1:], gain, bias)


class LayerNormLSTM(Cell):
    """The LSTM with each product normalised over its units, and the cell before the output:
    (i, f, g, o) = LN(W_ih x_t + b_ih; α_x) + LN(W_hh h_{t-1} + b_hh; α_h) + β,
    c_t = f ⊙ c_{t-1} + i ⊙ g,   h_t = o ⊙ tanh(LN(c_t; α_c, β_c))."""

    name = "layernorm_lstm"
    paper = "Ba, Kiros & Hinton, Layer normalization, arXiv:1607.06450 (2016)"
    gates = ("i", "f", "g", "o")
    states = ("h", "c")
    parameters = {  # noqa: RUF012
        "ln_x": Weight(("4H",), "ones"),
        "ln_h": Weight(("4H",), "ones"),
        "ln_bias": Weight(("4H",), "zeros"),
        "ln_c": Weight(("H",), "ones"),
        "ln_c_bias": Weight(("H",), "zeros"),
    }

    def step(self, x, hh, state, p):
        h, c = state
        gates = layer_norm(x, p.ln_x) + layer_norm(hh, p.ln_h) + p.ln_bias  # (B, 4H)
        i, f, g, o = gates.chunk(4, dim=-1)
        i, f, g, o = σ(i), σ(f), tanh(g), σ(o)
        c = f * c + i * g
        h = o * tanh(layer_norm(c, p.ln_c, p.ln_c_bias))
        return (h, c), {"i": i, "f": f, "g": g, "o": o}
