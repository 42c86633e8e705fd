"""Shared fixtures: a small text file, a tiny trained character-model run directory, the
same-weights torch.nn twin of an rnnkit layer; hypothesis's CI profile."""

import os

import pytest
import torch
from hypothesis import settings

from helpers import CORPUS, TINY
from rnnkit.cli import main

# In CI the property tests draw the same examples every run (reproducible failures); locally
# they keep exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.fixture
def small_text(tmp_path):
    """The first 6,000 characters of Tiny Shakespeare in a file."""
    path = tmp_path / "small.txt"
    path.write_text(CORPUS.read_text()[:6000])
    return path


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A 10-step run on the first 8,000 characters of Tiny Shakespeare: (run dir, data file)."""
    folder = tmp_path_factory.mktemp("cli")
    data = folder / "small.txt"
    data.write_text(CORPUS.read_text()[:8000])
    run = folder / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--max-steps", "10", *TINY]) == 0
    return run, data


@pytest.fixture(scope="session")
def explorer_runs(tmp_path_factory, trained_run):
    """Runs for `rnnkit explore`: the tiny LSTM run, a tiny GRU run on the same text and a
    tiny dates task run -> {"lstm": dir, "gru": dir, "dates": dir}."""
    lstm, data = trained_run
    folder = tmp_path_factory.mktemp("explore")
    gru = folder / "gru"
    assert main(["train", "--data", str(data), "--out", str(gru), "--max-steps", "5", *TINY,
                 "--cell", "gru", "--num-layers", "1"]) == 0  # fmt: skip
    dates = folder / "dates"
    assert main(["task", "dates", "train", "--out", str(dates), "--max-epochs", "1",
                 "--train-examples", "64", "--eval-examples", "8", "--batch-size", "32",
                 "--hidden-size", "8", "--embedding-size", "4", "--attention-size", "4",
                 "--beam-width", "1"]) == 0  # fmt: skip
    return {"lstm": lstm, "gru": gru, "dates": dates}
