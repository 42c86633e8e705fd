"""`rnnkit train / sample / eval` end to end, and every bad input: one clear line, exit code 2."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import CORPUS, TINY
from rnnkit.cli import main


def test_train_sample_eval(trained_run, capsys):
    run, data = trained_run
    capsys.readouterr()
    assert main(["sample", str(run), "--length", "40", "--seed", "1", "--prime", "ROMEO:"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("ROMEO:") and len(first) == len("ROMEO:") + 40 + 1
    assert main(["sample", str(run), "--length", "40", "--seed", "1", "--prime", "ROMEO:"]) == 0
    assert capsys.readouterr().out == first  # same seed, same text
    assert main(["sample", str(run), "--length", "20", "--temperature", "0", "--top-k", "3"]) == 0
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert "val:" in out and "nats/char" in out and "bits/char" in out and "perplexity" in out
    assert main(["eval", str(run), "--data", str(data), "--split", "all"]) == 0


def test_several_samples_are_drawn_at_once_with_one_seed_each(trained_run, capsys):
    run, _ = trained_run
    command = ["sample", str(run), "--length", "30", "--prime", "ROMEO:"]
    capsys.readouterr()
    alone = []
    for seed in (7, 8, 9):
        assert main([*command, "--seed", str(seed)]) == 0
        alone.append(capsys.readouterr().out.rstrip("\n"))
    assert main([*command, "--seed", "7", "--num-samples", "3"]) == 0
    assert capsys.readouterr().out == "\n\n".join(alone) + "\n"


def test_a_config_file_sits_between_defaults_and_flags(trained_run, tmp_path):
    _, data = trained_run
    config = tmp_path / "settings.toml"
    config.write_text('hidden_size = 12\ncell = "gru"\nmax_steps = 3\n')
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run), "--config", str(config)]
    assert main([*args, "--max-steps", "2", "--eval-interval", "1", "--batch-size", "2"]) == 0
    saved = (run / "config.json").read_text()
    assert '"hidden_size": 12' in saved and '"cell": "gru"' in saved and '"max_steps": 2' in saved


def test_a_time_budget_fits_the_defaults_a_flag_or_file_does_not_set(
    trained_run, tmp_path, capsys, monkeypatch
):
    from rnnkit.training.config import TrainConfig, budget_defaults

    # this machine's speed on one thread beside another run (half the speed of one thread
    # alone): the rule picks the 1x256 there (tests/test_budget.py holds the rule itself)
    monkeypatch.setenv("RNNKIT_BUDGET_STEP_SECONDS", "1x256=0.124,1x512=0.334,2x512=0.814")

    short, long = budget_defaults(4.7), budget_defaults(30)
    assert short and long and budget_defaults(0) == {}  # no budget: the class defaults
    assert budget_defaults(10) == short and budget_defaults(10.5) == budget_defaults(600) == long
    for defaults in (short, long):  # each names a field and changes its class default
        for name, value in defaults.items():
            assert getattr(TrainConfig(), name) != value, name
        TrainConfig.for_budget(time_budget=4.7, **defaults).validate()
    assert TrainConfig.for_budget() == TrainConfig()
    assert TrainConfig.for_budget(time_budget=4.7, lr=1e-3).lr == 1e-3
    for name, value in short.items():
        assert getattr(TrainConfig.for_budget(time_budget=4.7), name) == value
    _, data = trained_run
    config = tmp_path / "settings.toml"
    config.write_text("dropout = 0.3\n")
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run), "--config", str(config)]
    tiny = ["--embedding-size", "8", "--batch-size", "2", "--seq-len", "8", "--threads", "1"]
    capsys.readouterr()
    assert main([*args, *tiny, "--time-budget", "4.7", "--max-steps", "1", "--lr", "1e-3"]) == 0
    saved = TrainConfig.from_json(json.loads((run / "config.json").read_text()))
    assert saved.hidden_size == short["hidden_size"]  # from the budget's choice
    assert saved.shift_epochs is True and saved.eval_interval == short["eval_interval"]
    assert saved.lr == 1e-3 and saved.dropout == 0.3 and saved.seq_len == 8  # flags and file
    said = capsys.readouterr().err
    assert "4.7-minute budget" in said and f"--hidden-size {short['hidden_size']}" in said
    assert "--shift-epochs," in said
    assert "--lr" not in said.split("budget:")[1].split("\n")[0]
    low = ["train", "--data", str(data), "--out", str(tmp_path / "low"), "--time-budget", "4.7"]
    assert main([*low, *tiny, "--lr", "1e-4", "--min-lr", "2e-4"]) == 2
    assert "give a lower --min-lr" in capsys.readouterr().err


def bad(tmp_path: Path, trained_run) -> dict:
    run, data = trained_run
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    short = tmp_path / "short.txt"
    short.write_text("to be or not to be")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café".encode("latin-1"))
    toml = tmp_path / "bad.toml"
    toml.write_text("hidden_sise = 3\n")
    return {
        "missing file": (
            ["train", "--data", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "a")],
            "no such file",
        ),
        "empty file": (["train", "--data", str(empty), "--out", str(tmp_path / "b")], "is empty"),
        "too short": (
            ["train", "--data", str(short), "--out", str(tmp_path / "c")],
            "too few for batch_size",
        ),
        "invalid utf-8": (
            ["train", "--data", str(latin1), "--out", str(tmp_path / "d")],
            "--encoding bytes",
        ),
        "unknown prime": (
            ["sample", str(run), "--prime", "Zürich ☃"],
            "not in the model's vocabulary",
        ),
        "not a run": (["sample", str(tmp_path)], "not a run directory"),
        "no run": (["eval", str(tmp_path / "nothing")], "no such run directory"),
        "temperature": (["sample", str(run), "--temperature", "-0.5"], "--temperature"),
        "top-k": (["sample", str(run), "--top-k", "0"], "--top-k"),
        "top-p": (["sample", str(run), "--top-p", "1.5"], "--top-p"),
        "no test split": (["eval", str(run), "--split", "test"], "no test split"),
        "bad lr": (
            ["train", "--data", str(data), "--out", str(tmp_path / "e"), "--lr", "nan"],
            "finite",
        ),
        "negative size": (
            ["train", "--data", str(data), "--out", str(tmp_path / "f"), "--hidden-size", "-3"],
            "at least 1",
        ),
        "tie mismatch": (
            ["train", "--data", str(data), "--out", str(tmp_path / "g"), "--tie-weights"],
            "--tie-weights",
        ),
        "bad toml key": (
            ["train", "--data", str(data), "--out", str(tmp_path / "h"), "--config", str(toml)],
            "unknown key",
        ),
        "overwrite": (
            ["train", "--data", str(data), "--out", str(run)],
            "already holds a training run",
        ),
        "architecture": (["train", "--resume", str(run), "--cell", "gru"], "cell 'lstm' -> 'gru'"),
    }


CASES = [
    "missing file",
    "empty file",
    "too short",
    "invalid utf-8",
    "unknown prime",
    "not a run",
    "no run",
    "temperature",
    "top-k",
    "top-p",
    "no test split",
    "bad lr",
    "negative size",
    "tie mismatch",
    "bad toml key",
    "overwrite",
    "architecture",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gets_one_clear_line_and_exit_code_2(case, tmp_path, trained_run, capsys):
    arguments, message = bad(tmp_path, trained_run)[case]
    before = sorted(p.name for p in (trained_run[0] / "checkpoints").iterdir())
    capsys.readouterr()
    assert main(arguments) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("rnnkit ") and message in error[0], error
    assert "Traceback" not in error[0]
    assert sorted(p.name for p in (trained_run[0] / "checkpoints").iterdir()) == before


@pytest.mark.slow
def test_sigterm_saves_and_exits_143(tmp_path):
    data = tmp_path / "small.txt"
    data.write_text(CORPUS.read_text()[:20000])
    command = [
        sys.executable,
        "-m",
        "rnnkit",
        "train",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "run"),
        *TINY,
        "--max-steps",
        "100000",
        "--eval-interval",  # after TINY, which sets 5: no checkpoint before the signal's
        "100000",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (tmp_path / "run" / "metrics.csv").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "SIGTERM: saved step" in stderr and "--resume" in stderr
    assert list((tmp_path / "run" / "checkpoints").glob("step-*"))


def test_a_reader_that_leaves_early_ends_sampling_quietly(trained_run):
    """`rnnkit sample RUN | head -1`: a closed pipe is no error, and no traceback."""
    command = [sys.executable, "-m", "rnnkit", "sample", str(trained_run[0]), "--length", "20000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.readline()
    process.stdout.close()  # as `head -1` does after its line
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert "Traceback" not in stderr and "Broken pipe" not in stderr
