"""The table of cells: names, a user's cell from a file, its SHA-256 recorded in a run."""

import subprocess
import sys
from pathlib import Path

import pytest

from rnnkit.cell_names import CELL_NAMES
from rnnkit.cells import CELLS, cell_from_spec
from rnnkit.errors import UsageError

USER_CELL = '''
import torch
from rnnkit import Cell, Weight


class LeakyRNN(Cell):
    """h_t = λ ⊙ h_{t-1} + (1 − λ) ⊙ tanh(W x_t + U h_{t-1} + b), λ = σ(a)."""

    gates = ("n",)
    parameters = {"leak": Weight(("H",), "zeros")}

    def step(self, x, hh, state, p):
        (h,) = state
        n = torch.tanh(x + hh)
        keep = torch.sigmoid(p.leak)
        return keep * h + (1 - keep) * n, {"n": n}


NotACell = 3
'''


def test_the_torch_free_name_list_is_the_table():
    assert tuple(CELLS) == CELL_NAMES


@pytest.mark.parametrize("name", CELL_NAMES)
def test_every_shipped_cell_cites_its_paper(name):
    assert CELLS[name].paper


def test_a_cell_from_a_file(tmp_path):
    path = tmp_path / "my_cell.py"
    path.write_text(USER_CELL)
    cell = cell_from_spec(f"{path}:LeakyRNN")
    assert cell.gate_names == ("n",)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "unknown cell 'nope'"),
        ("{dir}/missing.py:X", "no such file"),
        ("{dir}/my_cell.py:Missing", "defines no 'Missing'"),
        ("{dir}/my_cell.py:NotACell", "is not a subclass of rnnkit.cells.Cell"),
    ],
)
def test_a_bad_cell_spec_is_a_usage_error(tmp_path, spec, message):
    (tmp_path / "my_cell.py").write_text(USER_CELL)
    with pytest.raises(UsageError, match=message):
        cell_from_spec(spec.format(dir=tmp_path))


def test_a_changed_file_is_refused(tmp_path):
    path = tmp_path / "my_cell.py"
    path.write_text(USER_CELL)
    with pytest.raises(UsageError, match="has changed since the run was trained"):
        cell_from_spec(f"{path}:LeakyRNN", expected_sha256="0" * 64)


def rnnkit(*args, cwd):
    command = [str(Path(sys.executable).parent / "rnnkit"), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_train_sample_resume_with_a_users_cell_and_a_changed_file_is_exit_2(tmp_path):
    (tmp_path / "my_cell.py").write_text(USER_CELL)
    small = ["--hidden-size", "16", "--embedding-size", "8", "--threads", "1"]
    steps = ["--max-steps", "6", "--eval-interval", "3", "--eval-chars", "2000"]
    done = rnnkit(
        "train", "--cell", "my_cell.py:LeakyRNN", "--out", "run", *steps, *small, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "cell.json").is_file()
    sampled = rnnkit("sample", "run", "--length", "20", "--seed", "1", cwd=tmp_path)
    assert sampled.returncode == 0, sampled.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()  # the run names the file by its absolute path
    assert rnnkit("sample", str(tmp_path / "run"), "--length", "5", cwd=elsewhere).returncode == 0
    resumed = rnnkit("train", "--resume", "run", "--max-steps", "9", "--threads", "1",
                     cwd=tmp_path)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    (tmp_path / "my_cell.py").write_text(USER_CELL + "\n# edited\n")
    refused = rnnkit("sample", "run", "--length", "5", cwd=tmp_path)
    assert refused.returncode == 2
    assert "has changed since the run was trained" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.slow
def test_a_library_cell_trains_and_explores_like_the_lstm(tmp_path):
    small = ["--hidden-size", "16", "--embedding-size", "8", "--threads", "1"]
    steps = ["--max-steps", "4", "--eval-interval", "2", "--eval-chars", "2000"]
    done = rnnkit("train", "--cell", "layernorm_lstm", "--out", "run", *steps, *small, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    from rnnkit.explorer.runs import load_runs

    (run,) = load_runs([tmp_path / "run"]).values()
    assert run.info()["parts"] == ["h", "c", "i", "f", "g", "o"]  # the explorer's unit picker
    reading = run.read("ROMEO:")
    assert set(reading.parts) == {"h", "c", "i", "f", "g", "o"}
    assert reading.parts["g"].shape == (1, 6, 16)  # (L, T, H)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["sentiment", "dates"])  # an encoder; an encoder-decoder
def test_a_task_trains_and_predicts_with_a_users_cell_and_refuses_a_changed_file(tmp_path, task):
    from rnnkit.cli import main

    cell_file = tmp_path / "my_cell.py"
    cell_file.write_text(USER_CELL)
    run = str(tmp_path / "run")
    tiny = ["--max-epochs", "1", "--train-examples", "64", "--eval-examples", "16",
            "--batch-size", "32", "--hidden-size", "8", "--embedding-size", "4"]  # fmt: skip
    if task == "dates":
        tiny += ["--attention-size", "4", "--beam-width", "2"]
    spec = f"{cell_file}:LeakyRNN"
    assert main(["task", task, "train", "--cell", spec, "--out", run, *tiny]) == 0
    assert (tmp_path / "run" / "cell.json").is_file()
    text = "a fine film" if task == "sentiment" else "3 may 1999"
    assert main(["task", task, "predict", run, "--text", text]) == 0
    cell_file.write_text(USER_CELL + "\n# edited\n")
    assert main(["task", task, "predict", run, "--text", text]) == 2


def test_a_task_refuses_an_unknown_cell():
    from rnnkit.cli import main

    assert main(["task", "sentiment", "train", "--cell", "nosuchcell", "--max-steps", "1"]) == 2
