"""The light GRU (Ravanelli et al., Light gated recurrent units for speech recognition, 2018)."""

import torch

from rnnkit.cells.definition import Cell

σ = torch.sigmoid


class LiGRU(Cell):
    """The GRU without its reset gate, with a ReLU candidate:
    z_t = σ(W_z x_t + U_z h_{t-1} + b_z),  h̃_t = relu(W_h x_t + U_h h_{t-1} + b_h),
    h_t = z_t ⊙ h_{t-1} + (1 − z_t) ⊙ h̃_t.
    (The paper also batch-normalises W x; here the products are plain, as in the GRU.)"""

    name = "ligru"
    paper = "Ravanelli et al., Light gated recurrent units for speech recognition, IEEE TETCI 2018"
    gates = ("z", "n")
    states = ("h",)

    def step(self, x, hh, state, p):
        (h,) = state
        a_z, a_n = (x + hh).chunk(2, dim=-1)  # each (B, H)
        z = σ(a_z)
        n = torch.relu(a_n)
        h = z * h + (1 - z) * n
        return h, {"z": z, "n": n}
