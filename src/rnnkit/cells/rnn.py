"""The Elman RNN (Elman 1990), torch.nn.RNN's equations."""

import torch

from rnnkit.cells.definition import Cell


class ElmanRNN(Cell):
    """h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = tanh or relu.

    W_ih is (H, I), W_hh (H, H): one block, named "h"; no gate activations to record.
    """

    name = "rnn"
    paper = "Elman, Finding structure in time, Cognitive Science 1990"
    gates = ("h",)

    def __init__(self, nonlinearity: str = "tanh") -> None:
        self.nonlinearity = nonlinearity
        self.activation = torch.tanh if nonlinearity == "tanh" else torch.relu
        # its registered fast paths (engine/registered.py): one set per activation
        self.kernel = f"rnn_{nonlinearity}"

    def step(self, x, hh, state, p):
        (h,) = state
        h = self.activation(x + hh)  # (B, H)
        return h, {}

    def __repr__(self) -> str:
        return f"ElmanRNN(nonlinearity={self.nonlinearity!r})"
