"""Shared helpers: an rnnkit layer and its torch.nn twin with the same weights; a tiny trained
character-model run directory."""

import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings
from torch import nn

import rnnkit
from rnnkit.cli import main

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


CORPUS = Path(__file__).resolve().parents[1] / "src/rnnkit/assets/tinyshakespeare/input.txt"
TINY = [
    "--hidden-size",
    "16",
    "--embedding-size",
    "8",
    "--batch-size",
    "4",
    "--seq-len",
    "16",
    "--eval-interval",
    "5",
    "--warmup-steps",
    "2",
    "--threads",
    "1",
]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A 10-step run on the first 8,000 characters of Tiny Shakespeare: (run dir, data file)."""
    folder = tmp_path_factory.mktemp("cli")
    data = folder / "small.txt"
    data.write_text(CORPUS.read_text()[:8000])
    run = folder / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--max-steps", "10", *TINY]) == 0
    return run, data
