"""The independently recurrent network (Li et al., IndRNN, CVPR 2018)."""

import torch

from rnnkit.cells.definition import Cell, Weight


class IndRNN(Cell):
    """Each unit sees only its own past, through one weight u (no hidden matrix):
    h_t = relu(W x_t + b + u ⊙ h_{t-1})."""

    name = "indrnn"
    paper = "Li et al., Independently recurrent neural network (IndRNN), CVPR 2018"
    gates = ("h",)
    hidden_gates = ()
    parameters = {"recurrent_weight": Weight(("H",), "unit_uniform")}  # noqa: RUF012

    def step(self, x, hh, state, p):
        (h,) = state
        h = torch.relu(x + p.recurrent_weight * h)  # (B, H)
        return h, {}
