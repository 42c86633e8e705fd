"""Shared helpers: an rnnkit layer and its torch.nn twin with the same weights."""

import os

import pytest
import torch
from hypothesis import settings
from torch import nn

import rnnkit

# In CI the property tests draw the same examples every run (reproducible failures); locally
# they keep exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

TORCH_LAYERS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}
RNNKIT_LAYERS = {"RNN": rnnkit.RNN, "LSTM": rnnkit.LSTM, "GRU": rnnkit.GRU}


def layer_pair(kind: str, *args, **kwargs) -> tuple[nn.Module, nn.Module]:
    """(rnnkit layer, torch.nn layer), float64, the torch weights copied into rnnkit."""
    reference = TORCH_LAYERS[kind](*args, **kwargs).double()
    ours = RNNKIT_LAYERS[kind](*args, **kwargs).double()
    ours.load_state_dict(reference.state_dict())
    return ours, reference


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
