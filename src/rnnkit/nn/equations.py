"""One time step of each recurrent cell, written as its equations: the reference.

These three functions are the reference that every other part of rnnkit is built on and tested
against: the cells call them once per step, the layers once per step of every layer and
direction.

Each takes ``x_proj = W_ih x_t + b_ih``, the input's share of every gate, already computed: a
cell computes it for its one step, a layer computes it for all steps at once with one matrix
product (the input does not depend on the recurrence). The recurrent share ``W_hh h_{t-1} + b_hh``
is computed here, because it cannot be computed before h_{t-1} is known.

Weights are stacked in torch.nn's gate order, so a torch.nn checkpoint loads unchanged:
    RNN:  W_hh is (H, H)
    LSTM: W_hh is (4H, H) = [W_hi; W_hf; W_hg; W_ho]   (i, f, g, o)
    GRU:  W_hh is (3H, H) = [W_hr; W_hz; W_hn]         (r, z, n)
"""

import torch
import torch.nn.functional as F
from torch import Tensor


def rnn_step(
    x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None, nonlinearity: str
) -> Tensor:
    """Elman RNN: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = tanh or relu.

    x_proj: (B, H), h: (B, H) -> h_t: (B, H)
    """
    pre_activation = x_proj + F.linear(h, w_hh, b_hh)  # (B, H)
    if nonlinearity == "tanh":
        return torch.tanh(pre_activation)
    return torch.relu(pre_activation)


def lstm_step(
    x_proj: Tensor,
    h: Tensor,
    c: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    w_hr: Tensor | None = None,
) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor, Tensor, Tensor]]:
    """LSTM, gate order i, f, g, o (torch.nn.LSTM's):

        i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)      input gate
        f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)      forget gate
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)   candidate cell
        o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)      output gate
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                     cell state: the long memory
        h_t = o_t ⊙ tanh(c_t)                               hidden state
        with a projection (w_hr given): h_t = W_hr (o_t ⊙ tanh(c_t))

    x_proj: (B, 4H), h: (B, P) with P = proj_size or H, c: (B, H)
    -> h_t: (B, P), c_t: (B, H), gates (i, f, g, o): each (B, H)
    """
    gates = x_proj + F.linear(h, w_hh, b_hh)  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=1)  # each (B, H)
    i = torch.sigmoid(i)
    f = torch.sigmoid(f)
    g = torch.tanh(g)
    o = torch.sigmoid(o)
    c = f * c + i * g
    h = o * torch.tanh(c)
    if w_hr is not None:
        h = F.linear(h, w_hr)  # (B, P)
    return h, c, (i, f, g, o)


def gru_step(
    x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None
) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """GRU, gate order r, z, n (torch.nn.GRU's):

        r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)            reset gate
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)            update gate
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))  candidate state
        h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    The textbook form (Cho et al. 2014 as usually taught) writes
    h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t: there z_t is the share of the *new* state, here it
    is the share of the *old* one. The two are the same model with z replaced by 1 − z; we keep
    torch.nn's convention so that its weights load unchanged. Note also that the reset gate
    multiplies W_hn h_{t-1} + b_hn, not h_{t-1} itself (the cuDNN variant torch.nn uses).

    x_proj: (B, 3H), h: (B, H) -> h_t: (B, H), gates (r, z, n): each (B, H)
    """
    size = h.shape[-1]
    h_proj = F.linear(h, w_hh, b_hh)  # (B, 3H): W_h· h_{t-1} + b_h· for r, z, n
    # r and z in one sigmoid over their (B, 2H) block: fewer, larger operations per step.
    r, z = torch.sigmoid(x_proj[:, : 2 * size] + h_proj[:, : 2 * size]).chunk(2, dim=1)
    n = torch.tanh(x_proj[:, 2 * size :] + r * h_proj[:, 2 * size :])
    h = n + z * (h - n)  # = (1 − z) ⊙ n + z ⊙ h, with one operation fewer
    return h, (r, z, n)


GATE_NAMES = {"RNN": (), "LSTM": ("i", "f", "g", "o"), "GRU": ("r", "z", "n")}
"""The gate activations each kind of cell records, in torch.nn's stacking order."""

GATE_COUNT = {"RNN": 1, "LSTM": 4, "GRU": 3}
"""How many blocks of H rows W_ih and W_hh stack."""
