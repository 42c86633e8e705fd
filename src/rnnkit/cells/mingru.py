"""minGRU (Feng et al., Were RNNs all we needed?, arXiv:2410.01201, 2024)."""

import torch

from rnnkit.cells.linear import LinearCell


class MinGRU(LinearCell):
    """The gate and the candidate read x_t only, so the recurrence is linear in h:
    z_t = σ(W_z x_t + b_z),  h̃_t = W_h x_t + b_h,  h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t."""

    name = "mingru"
    paper = "Feng et al., Were RNNs all we needed?, arXiv:2410.01201 (2024)"
    gates = ("z", "n")

    def coefficients(self, x, p):
        a_z, n = x.chunk(2, dim=-1)  # each (rows, H)
        z = torch.sigmoid(a_z)
        return 1 - z, z * n, {"z": z, "n": n}
