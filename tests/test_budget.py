"""--time-budget fitted to the machine (training/budget.py): the choice for a fast and a slow
machine, from injected speeds, and a resumed run keeps what it chose."""

import inspect
import json
from types import SimpleNamespace

import pytest
import torch

from rnnkit.cli import main
from rnnkit.training.budget import (
    CANDIDATES,
    HELD_UP_TO,
    Validation,
    another_step_fits,
    choose,
    curves,
    model_shape,
    predicted_loss,
)
from rnnkit.training.config import TrainConfig

SHAKESPEARE = 1_115_394
SLOW = {"1x256": 0.062, "1x512": 0.167, "2x512": 0.407}  # 1 thread here, ms per step / 1000
FAST = {size: seconds / 8 for size, seconds in SLOW.items()}  # a machine 8x faster


def test_a_faster_machine_gets_a_larger_model_and_a_lower_predicted_loss():
    slower = {size: 2 * seconds for size, seconds in SLOW.items()}  # one thread beside a run
    slow, fast = choose(4.7, slower, SHAKESPEARE), choose(4.7, FAST, SHAKESPEARE)
    assert model_shape(slow.size) == (1, 256)
    assert model_shape(fast.size) in ((1, 512), (2, 512))
    assert fast.predicted[fast.size] < slow.predicted[slow.size]
    # the small model, given the fast machine's steps, would over-fit: its curve rises again
    assert fast.predicted["1x256"] > slow.predicted["1x256"]


@pytest.mark.parametrize("speeds", [SLOW, FAST])
def test_a_longer_budget_never_predicts_worse(speeds):
    losses = [choose(minutes, speeds, SHAKESPEARE) for minutes in (2, 4.7, 10, 30)]
    best = [choice.predicted[choice.size] for choice in losses]
    assert best == sorted(best, reverse=True)


def test_the_curves_interpolate_in_log_steps_and_hold_beyond_the_last_point():
    points = [[1000, 1.6], [4000, 1.4]]
    assert predicted_loss(points, 2000) == pytest.approx(1.5)
    assert predicted_loss(points, 10**6) == 1.4  # no gain that was never measured
    assert predicted_loss(points, 500) > 1.6
    assert set(curves()["tinyshakespeare"]["sizes"]) == set(CANDIDATES)


def test_a_curve_is_used_only_where_it_was_measured():
    """Not before a curve's first point (extended back, its first segment would promise too
    much), nor past a recipe's HELD_UP_TO; outside every curve, the candidate nearest to
    its own."""
    first = curves()["tinyshakespeare"]["sizes"]["2x512-d0.1-lr5e-3"][0][0]
    choice = choose(30, {"2x512": 30 * 60 / (first * 3 // 4)}, SHAKESPEARE)
    assert choice.steps["2x512-d0.1-lr5e-3"] < first
    assert choice.size != "2x512-d0.1-lr5e-3"
    # what the run prints says so, rather than a prediction lower than the chosen one's
    rows = choice.describe().split(", ")
    assert "(not swept at that many steps)" in next(
        row for row in rows if row.startswith("2x512-d0.1-lr5e-3 ")
    )
    held = HELD_UP_TO["2x512-d0.1-lr5e-3"]
    at_most = choose(30, {"2x512": 30 * 60 / (held + 2000)}, SHAKESPEARE)
    assert at_most.steps["2x512-d0.1-lr5e-3"] > held
    assert at_most.size not in HELD_UP_TO
    # 100 steps each: every curve starts later; the 2x512's at 500, the nearest
    nothing_measured = choose(30, {"2x512": 30 * 60 / 100}, SHAKESPEARE)
    assert nothing_measured.size == "2x512"


def test_candidates_of_one_shape_share_one_measurement():
    # the 1x512 recipes differ in dropout only: the 1x512's time serves both
    choice = choose(4.7, SLOW, SHAKESPEARE)
    assert choice.step_seconds["1x512-d0.1"] == SLOW["1x512"]
    assert choice.steps["1x512-d0.1"] == choice.steps["1x512"]
    assert "1x512-d0.1" in choice.predicted


NOT_SWEPT_ON_STDLIB = ("1x512-d0.1", "1x512-d0.05", "2x512-d0.1", "1x256-lr0.01",
                       "1x512-d0.05-lr0.01", "2x512-lr5e-3", "2x512-d0.1-lr5e-3")  # fmt: skip


def test_a_candidate_without_a_curve_for_the_corpus_is_not_chosen():
    # python-stdlib was swept with the heavier dropouts and the lower learning rate only
    for minutes in (2, 4.7, 10, 30):
        choice = choose(minutes, FAST, 7_186_139)
        for recipe in NOT_SWEPT_ON_STDLIB:
            assert recipe in choice.steps and recipe not in choice.predicted
            assert choice.size != recipe


def test_the_probe_measures_each_shape_once(monkeypatch):
    from rnnkit.models import charlm
    from rnnkit.training.budget import probe

    built = []
    original = charlm.CharLM.__init__

    def counting(self, *args, **kwargs):
        given = inspect.signature(original).bind(self, *args, **kwargs).arguments
        built.append((given["num_layers"], given["hidden_size"]))
        original(self, *args, **kwargs)

    monkeypatch.setattr(charlm.CharLM, "__init__", counting)
    # the run's own settings: AR/TAR and clipping are part of the step it times
    config = TrainConfig(batch_size=2, seq_len=4, embedding_size=8, activation_reg=2.0,
                         temporal_activation_reg=1.0)  # fmt: skip
    measured = probe(config, 10, torch.device("cpu"), seconds=0.0)
    assert sorted(built) == [(1, 256), (1, 512), (2, 512)]
    assert len(measured) == 3 and all(seconds > 0 for seconds in measured.values())


def test_the_probe_costs_what_it_measured_and_the_choice_counts_it():
    choice = choose(2, SLOW, SHAKESPEARE, probe_seconds=3.0)
    assert choice.steps["1x256"] == int((120 - 3.0) / SLOW["1x256"])


def test_the_steps_leave_time_for_the_validation_passes():
    # python-stdlib's 720,000 validation characters in batches of 64 x 64: 176 forwards of
    # twice a training batch, a third of a step each -> a pass costs about 117 steps
    config = SimpleNamespace(val_fraction=0.1, eval_chars=2_000_000, seq_len=64,
                             eval_interval=500, batch_size=32)  # fmt: skip
    validation = Validation.of(config, 7_186_139)
    assert validation == Validation(interval=500, pass_steps=pytest.approx(176 * 2 / 3))
    choice = choose(4.7, {"1x256": 0.069}, 7_186_139, 7.4, validation)
    # what the 4.7-minute python-stdlib run then made: 3,001 steps (3,970 without the passes)
    assert 3_000 < choice.steps["1x256"] < 3_200
    steps = choice.steps["1x256"]
    spent = steps * 0.069 + (steps / 500 + 1) * validation.pass_steps * 0.069
    assert spent <= 4.7 * 60 - 7.4 < spent + 0.069 * 1.3  # one step more would not fit
    # a shorter validation text (eval_chars) costs less
    shorter = Validation.of(SimpleNamespace(**{**vars(config), "eval_chars": 100_000}), 7_186_139)
    assert shorter.pass_steps < validation.pass_steps / 5


def test_the_probe_stops_a_size_before_a_step_that_would_end_past_its_share():
    assert another_step_fits(now=10.0, until=10.5, last_step=0.4)
    assert not another_step_fits(now=10.2, until=10.5, last_step=0.4)  # would end at 10.6
    assert not another_step_fits(now=10.6, until=10.5, last_step=0.01)


@pytest.mark.slow
def test_a_run_saves_its_choice_and_resume_keeps_it(tmp_path, monkeypatch, capsys):
    def speeds(table):
        monkeypatch.setenv(
            "RNNKIT_BUDGET_STEP_SECONDS", ",".join(f"{k}={v}" for k, v in table.items())
        )

    run = tmp_path / "run"
    speeds({size: seconds / 2000 for size, seconds in SLOW.items()})  # a very fast machine
    assert main(["train", "--out", str(run), "--time-budget", "0.03", "--threads", "1",
                 "--eval-chars", "2000"]) == 0  # fmt: skip
    said = capsys.readouterr()
    assert "chose 2x512" in said.out + said.err
    saved = json.loads((run / "config.json").read_text())
    assert (saved["num_layers"], saved["hidden_size"]) == (2, 512)
    speeds(SLOW)  # the machine got slow: a resumed run still continues its own model
    assert main(["train", "--resume", str(run), "--max-steps", "3", "--threads", "1"]) == 0
    said = capsys.readouterr()
    assert "chose" not in said.out + said.err
    saved = json.loads((run / "config.json").read_text())
    assert (saved["num_layers"], saved["hidden_size"]) == (2, 512)


def test_a_size_given_on_the_command_line_is_not_chosen(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RNNKIT_BUDGET_STEP_SECONDS", "1x256=0.0001,1x512=0.0002,2x512=0.0004")
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--time-budget", "0.01", "--hidden-size", "32",
                 "--threads", "1", "--eval-chars", "500"]) == 0  # fmt: skip
    said = capsys.readouterr()
    assert "chose" not in said.out + said.err
    assert json.loads((run / "config.json").read_text())["hidden_size"] == 32


@pytest.mark.parametrize("raw", ["1x256", "1x256=fast", "1x999=0.1", "1x256=0"])
def test_a_malformed_injected_speed_is_a_clear_error(monkeypatch, raw):
    from rnnkit.errors import UsageError
    from rnnkit.training.budget import injected_step_seconds

    monkeypatch.setenv("RNNKIT_BUDGET_STEP_SECONDS", raw)
    with pytest.raises(UsageError, match=r"RNNKIT_BUDGET_STEP_SECONDS.*candidates: 1x256"):
        injected_step_seconds()
