"""The simple recurrent unit (Lei et al., Simple recurrent units for highly parallelizable
recurrence, EMNLP 2018)."""

import torch

from rnnkit.cells.definition import Cell, Weight

σ, tanh = torch.sigmoid, torch.tanh


class SRU(Cell):
    """Every product reads x_t only; the recurrence is elementwise (v_f, v_r):
    f_t = σ(W_f x_t + v_f ⊙ c_{t-1} + b_f),   r_t = σ(W_r x_t + v_r ⊙ c_{t-1} + b_r),
    c_t = f_t ⊙ c_{t-1} + (1 − f_t) ⊙ (W x_t),
    h_t = r_t ⊙ tanh(c_t) + (1 − r_t) ⊙ (W_s x_t)     (the highway; W_s maps x to H units)."""

    name = "sru"
    paper = "Lei et al., Simple recurrent units for highly parallelizable recurrence, EMNLP 2018"
    gates = ("x", "f", "r", "s")
    hidden_gates = ()
    states = ("h", "c")
    parameters = {"v_f": Weight(("H",)), "v_r": Weight(("H",))}  # noqa: RUF012

    def step(self, x, hh, state, p):
        h, c = state
        x_tilde, a_f, a_r, skip = x.chunk(4, dim=-1)  # each (B, H)
        f = σ(a_f + p.v_f * c)
        r = σ(a_r + p.v_r * c)
        c = f * c + (1 - f) * x_tilde
        h = r * tanh(c) + (1 - r) * skip
        return (h, c), {"f": f, "r": r}
