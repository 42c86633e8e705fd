"""minLSTM (Feng et al., Were RNNs all we needed?, arXiv:2410.01201, 2024)."""

import torch

from rnnkit.cells.linear import LinearCell

σ = torch.sigmoid


class MinLSTM(LinearCell):
    """Forget and input gates from x_t only, normalised to sum to one:
    f_t = σ(W_f x_t + b_f),  i_t = σ(W_i x_t + b_i),  h̃_t = W_h x_t + b_h,
    h_t = f_t / (f_t + i_t) ⊙ h_{t-1} + i_t / (f_t + i_t) ⊙ h̃_t."""

    name = "minlstm"
    paper = "Feng et al., Were RNNs all we needed?, arXiv:2410.01201 (2024)"
    gates = ("f", "i", "n")

    def coefficients(self, x, p):
        a_f, a_i, n = x.chunk(3, dim=-1)  # each (rows, H)
        f, i = σ(a_f), σ(a_i)
        f, i = f / (f + i), i / (f + i)
        return f, i * n, {"f": f, "i": i, "n": n}
