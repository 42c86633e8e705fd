"""The GRU (Cho et al. 2014), in torch.nn.GRU's gate order r, z, n."""

import torch

from rnnkit.cells.definition import Cell

σ, tanh = torch.sigmoid, torch.tanh


class GRU(Cell):
    """
    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)            reset gate
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)            update gate
    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))  candidate state
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    The textbook form (Cho et al. 2014 as usually taught) writes
    h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t: there z_t is the share of the *new* state, here it
    is the share of the *old* one. The two are the same model with z replaced by 1 − z; we keep
    torch.nn's convention so that its weights load unchanged. The reset gate multiplies
    W_hn h_{t-1} + b_hn, not h_{t-1} itself (the cuDNN variant torch.nn uses).
    """

    name = "gru"
    paper = "Cho et al., Learning phrase representations using RNN encoder-decoder, EMNLP 2014"
    gates = ("r", "z", "n")
    kernel = "gru"

    def step(self, x, hh, state, p):
        (h,) = state
        x_r, x_z, x_n = x.chunk(3, dim=-1)  # each (B, H)
        h_r, h_z, h_n = hh.chunk(3, dim=-1)
        r = σ(x_r + h_r)
        z = σ(x_z + h_z)
        n = tanh(x_n + r * h_n)
        h = (1 - z) * n + z * h
        return h, {"r": r, "z": z, "n": n}
