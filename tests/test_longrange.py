"""`rnnkit longrange`: the two problems are what they claim, budgets are equal, runs end."""

import json

import pytest
import torch

from rnnkit.cli import main
from rnnkit.inside import longrange


def test_adding_batch_marks_one_step_in_each_half_and_sums_them():
    inputs, targets = longrange.adding_batch(50, 20, torch.Generator().manual_seed(0))
    assert inputs.shape == (20, 50, 2) and targets.shape == (50,)
    markers = inputs[..., 1]
    assert (markers.sum(0) == 2).all()
    assert (markers[:10].sum(0) == 1).all() and (markers[10:].sum(0) == 1).all()
    assert torch.allclose((inputs[..., 0] * markers).sum(0), targets)
    # always answering 1 costs Var(u1 + u2) = 1/6 (on a large sample)
    _, many = longrange.adding_batch(200_000, 10, torch.Generator().manual_seed(1))
    assert ((many - 1) ** 2).mean().item() == pytest.approx(1 / 6, abs=0.005)


def test_copy_batch_shows_symbols_then_asks_for_them_after_the_delay():
    delay = 7
    inputs, targets = longrange.copy_batch(4, delay, torch.Generator().manual_seed(0))
    length = delay + 20
    assert inputs.shape == (length, 4, 10) and targets.shape == (length, 4)
    ids = inputs.argmax(-1)
    symbols = ids[:10]
    assert ((symbols >= 1) & (symbols <= 8)).all()
    assert (ids[10 + delay - 1] == 9).all()  # the delimiter, right before recall
    assert (ids[10 : 10 + delay - 1] == 0).all() and (ids[-10:] == 0).all()
    assert torch.equal(targets[-10:], symbols) and (targets[:-10] == 0).all()


@pytest.mark.parametrize("task", ["adding", "copy"])
def test_every_cell_gets_the_same_parameter_budget(task):
    inputs, outputs = longrange.TASKS[task]
    counts = {}
    for cell in ("rnn", "lstm", "gru"):
        hidden = longrange.hidden_size_for_budget(cell, inputs, outputs, 20_000)
        model = longrange.TaskModel(cell, inputs, hidden, outputs)
        counts[cell] = sum(p.numel() for p in model.parameters())
        assert counts[cell] == longrange.parameter_count(cell, inputs, hidden, outputs)
        assert counts[cell] <= 20_000 < longrange.parameter_count(cell, inputs, hidden + 1, outputs)
    assert max(counts.values()) - min(counts.values()) < 0.05 * 20_000


@pytest.mark.slow
def test_a_short_adding_problem_is_learned_by_an_lstm():
    result = longrange.train_one("adding", "lstm", 10, budget=3000, seconds=60, max_steps=800)
    assert result.steps == 800
    assert result.metric < 0.05  # well below the 0.167 of always answering 1


@pytest.mark.slow
def test_the_command_writes_the_table_json_and_png(tmp_path, capsys):
    arguments = ["longrange", "--delays", "3", "--time-budget", "0.005", "--parameters", "500"]
    assert main([*arguments, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| adding | 3 |" in out and "| copy | 3 |" in out
    results = json.loads((tmp_path / "longrange.json").read_text())
    assert {(r["task"], r["cell"]) for r in results} == {
        (task, cell) for task in ("adding", "copy") for cell in ("rnn", "lstm", "gru")
    }
    assert (tmp_path / "longrange.png").read_bytes().startswith(b"\x89PNG")


def test_a_file_as_the_output_folder_is_refused(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["longrange", "--out", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err
