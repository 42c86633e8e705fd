"""Plain helpers that several test files use (fixtures live in conftest.py)."""

import contextlib
import csv
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import rnnkit
from rnnkit.cells import Cell
from rnnkit.engine import compiled
from rnnkit.models.charlm import CharLM
from rnnkit.models.stepping import Stepper
from rnnkit.training.config import TrainConfig

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
"""Flags of a character model small enough to train in well under a second."""


def tiny(data, **overrides) -> TrainConfig:
    """A TrainConfig of a 2-layer LSTM of 16 that trains 12 steps on ``data``."""
    settings = dict(
        data=str(data),
        cell="lstm",
        num_layers=2,
        hidden_size=16,
        embedding_size=8,
        dropout=0.1,
        batch_size=4,
        seq_len=16,
        max_steps=12,
        eval_interval=4,
        warmup_steps=3,
        log_interval=100,
        threads=1,
        seed=7,
    )
    return TrainConfig(**(settings | overrides))


def losses(run_dir: Path, column: str = "train_loss") -> list[str]:
    with (run_dir / "metrics.csv").open(newline="") as file:
        return [row[column] for row in csv.DictReader(file)]


def final_weights(run_dir: Path, weights: str = "model") -> dict:
    newest = sorted((run_dir / "checkpoints").glob("step-*"))[-1]
    return load_file(newest / f"{weights}.safetensors")


def quiet(*args):
    pass


TORCH_LAYERS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}
RNNKIT_LAYERS = {"RNN": rnnkit.RNN, "LSTM": rnnkit.LSTM, "GRU": rnnkit.GRU}


def layer_pair(kind: str, *args, **kwargs) -> tuple[nn.Module, nn.Module]:
    """(rnnkit layer, torch.nn layer), float64, the torch weights copied into rnnkit."""
    reference = TORCH_LAYERS[kind](*args, **kwargs).double()
    ours = RNNKIT_LAYERS[kind](*args, **kwargs).double()
    ours.load_state_dict(reference.state_dict())
    return ours, reference


def skip_without_a_compiler():
    """The C++ loops need a C++ compiler and ninja; where they cannot build, their tests skip
    with the reason, unless the environment demands them (RNNKIT_KERNELS=cpp: then fail)."""
    module, problem = compiled._build()
    if module is None and os.environ.get("RNNKIT_KERNELS", "").strip().lower() != "cpp":
        pytest.skip(f"the C++ loops did not build here ({problem}); the Python loops are tested")


@contextlib.contextmanager
def python_steps(python: bool = True):
    """Every cell runs its own Python step inside (with python), not the C++ loops."""
    previous = os.environ.get("RNNKIT_KERNELS")
    if python:
        os.environ["RNNKIT_KERNELS"] = "python"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("RNNKIT_KERNELS", None)
        else:
            os.environ["RNNKIT_KERNELS"] = previous


def stepped_and_read(cell: Cell):
    """A small character model of ``cell``: its Stepper, the logits of stepping nine
    characters one at a time, and the model's own logits reading them at once."""
    torch.manual_seed(0)
    model = CharLM(11, cell, 6, 8, 2).double().eval()
    ids = torch.randint(11, (1, 9))
    with torch.no_grad():
        expected, _ = model(ids)
    stepper, state, logits = Stepper(model), None, []
    for t in range(ids.shape[1]):
        step_logits, state = stepper.step(ids[0, t], state)
        logits.append(step_logits[0])
    return stepper, torch.stack(logits), expected[0]
