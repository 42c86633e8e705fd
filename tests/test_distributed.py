"""Data parallelism: 2 processes on gloo train what 1 process does on the same global batch."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch.testing import assert_close

from helpers import CORPUS
from rnnkit.cli import main

pytestmark = pytest.mark.slow  # subprocesses and training runs: `make test` runs them

SETTINGS = ["--hidden-size", "16", "--embedding-size", "8", "--batch-size", "4", "--seq-len", "16",
            "--max-steps", "8", "--eval-interval", "4", "--warmup-steps", "2", "--threads", "1",
            "--dropout", "0.0", "--num-layers", "2"]  # fmt: skip


def newest_weights(run: Path) -> dict:
    return load_file(sorted((run / "checkpoints").glob("step-*"))[-1] / "model.safetensors")


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_two_processes_equal_one_process_on_the_global_batch(tmp_path):
    data = tmp_path / "small.txt"
    data.write_text(CORPUS.read_text()[:8000])
    train = ["-m", "rnnkit", "train", "--data", str(data)]
    threads = torch.get_num_threads()
    try:  # in this process, on one thread as the two below (--threads 1)
        assert main([*train[2:], "--out", str(tmp_path / "one"), *SETTINGS]) == 0
    finally:
        torch.set_num_threads(threads)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"]
    launched = subprocess.run(
        [*torchrun, *train, "--out", str(tmp_path / "two"), *SETTINGS],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr[-3000:]
    one, two = newest_weights(tmp_path / "one"), newest_weights(tmp_path / "two")
    assert set(one) == set(two)
    for name in one:  # the all-reduce sums in another order: equal to float32 round-off
        assert_close(two[name], one[name], rtol=1e-4, atol=1e-5)
    # only rank 0 wrote: one metrics file with one row per step
    assert len((tmp_path / "two" / "metrics.csv").read_text().splitlines()) == 1 + 8
    shutil.rmtree(tmp_path / "two" / "data")
