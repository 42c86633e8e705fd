"""The independently recurrent network (Li et al., IndRNN, CVPR 2018)."""

import torch

from rnnkit.cells.definition import Cell, Weight


class IndRNN(Cell):
    """Each unit sees only its own past, through one weight u (no hidden matrix):
    h_t = relu(W x_t + b + u ⊙ h_{t-1}), u held to [−1, 1].

    The bound is the paper's constraint on u (without it a relu unit with u > 1 grows
    geometrically, and a char model diverged within 200 steps); taken here by clamping u where
    it is used, so no optimiser has to know of it."""

    name = "indrnn"
    paper = "Li et al., Independently recurrent neural network (IndRNN), CVPR 2018"
    gates = ("h",)
    hidden_gates = ()
    parameters = {"recurrent_weight": Weight(("H",), "unit_uniform")}  # noqa: RUF012

    def step(self, x, hh, state, p):
        (h,) = state
        u = p.recurrent_weight.clamp(-1.0, 1.0)  # (H,)
        h = torch.relu(x + u * h)  # (B, H)
        return h, {}
