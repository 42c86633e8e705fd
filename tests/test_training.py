"""The training loop: exact resume, the BPTT boundary, non-finite policies, signals, outputs."""

import csv
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers import final_weights, losses, quiet, tiny
from rnnkit.errors import UsageError
from rnnkit.training import trainer as trainer_module
from rnnkit.training.config import TrainConfig
from rnnkit.training.distributed import Ranks
from rnnkit.training.language_model import LanguageModelJob, train
from rnnkit.training.trainer import TrainingAborted


def test_a_run_writes_metrics_a_curve_and_checkpoints(small_text, tmp_path):
    result = train(tiny(small_text), tmp_path / "run", log=quiet, progress=False)
    run = tmp_path / "run"
    assert result.steps == 12 and result.stopped_by == "max_steps" and result.exit_code == 0
    with (run / "metrics.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["step", "train_loss", "val_loss", "lr", "grad_norm", "ms_per_step"]
    assert [r["step"] for r in rows] == [str(s) for s in range(1, 13)]
    assert [bool(r["val_loss"]) for r in rows] == [s % 4 == 0 for s in range(1, 13)]
    assert (run / "loss.png").stat().st_size > 1000
    assert (run / "vocab.json").is_file() and (run / "config.json").is_file()
    kept = sorted(p.name for p in (run / "checkpoints").glob("step-*"))
    assert len(kept) <= 3 and "step-00000012" in kept


def interrupt_at(monkeypatch, step_to_stop):
    original = trainer_module.Trainer.train_step

    def train_step(self):
        result = original(self)
        if self.step + 1 == step_to_stop:
            os.kill(os.getpid(), signal.SIGINT)  # as if Ctrl-C arrived during this step
        return result

    monkeypatch.setattr(trainer_module.Trainer, "train_step", train_step)


SHIFTED_EPOCHS = dict(shift_epochs=True, batch_size=16, seq_len=32, max_steps=14)
"""5,400 training characters in 16 streams of 32-character chunks: 10 steps an epoch, so the
run reads a shifted second epoch from step 11."""


VARIATIONAL = dict(variational_dropout=True, dropout=0.3)
AVERAGED = dict(ema_decay=0.9)  # a checkpoint holds the average and the raw weights


@pytest.mark.slow
@pytest.mark.parametrize(
    ("settings", "stop"),
    [({}, 6), (SHIFTED_EPOCHS, 6), (SHIFTED_EPOCHS, 11), (VARIATIONAL, 6), (AVERAGED, 6)],
)
def test_interrupted_and_resumed_run_equals_the_straight_run(
    small_text, tmp_path, monkeypatch, settings, stop
):
    config = tiny(small_text, **settings)
    train(config, tmp_path / "straight", log=quiet, progress=False)

    interrupt_at(monkeypatch, stop)  # stops between evaluations: the state must come from there
    result = train(config, tmp_path / "resumed", log=quiet, progress=False)
    assert (result.stopped_by, result.exit_code, result.steps) == ("SIGINT", 130, stop)
    monkeypatch.undo()
    train(config, tmp_path / "resumed", resume=True, log=quiet, progress=False)

    assert losses(tmp_path / "resumed") == losses(tmp_path / "straight")
    assert losses(tmp_path / "resumed", "val_loss") == losses(tmp_path / "straight", "val_loss")
    for weights in ("model", "training_weights") if "ema_decay" in settings else ("model",):
        straight = final_weights(tmp_path / "straight", weights)
        resumed = final_weights(tmp_path / "resumed", weights)
        assert all(torch.equal(straight[k], resumed[k]) for k in straight)


@pytest.mark.slow
def test_kill_9_loses_only_the_steps_since_the_last_checkpoint(small_text, tmp_path):
    config = tiny(small_text, max_steps=60, eval_interval=5)
    train(config, tmp_path / "straight", log=quiet, progress=False)
    command = [sys.executable, "-m", "rnnkit", "train", "--out", str(tmp_path / "killed")]
    for key, value in config.to_json().items():
        if value is not None and not isinstance(value, bool):
            command += ["--" + key.replace("_", "-"), str(value)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not list((tmp_path / "killed" / "checkpoints").glob("step-*")) and time.time() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = sorted(p.name for p in (tmp_path / "killed" / "checkpoints").glob("step-*"))
    assert saved[-1] < "step-00000060"
    train(config, tmp_path / "killed", resume=True, log=quiet, progress=False)
    assert losses(tmp_path / "killed") == losses(tmp_path / "straight")


def test_the_gradient_stops_at_the_chunk_border(small_text, tmp_path):
    ranks = Ranks()
    job = LanguageModelJob(tiny(small_text), tmp_path / "run", False, quiet, ranks)
    trainer = trainer_module.Trainer(job, tmp_path / "run", False, quiet, ranks)
    trainer.train_step()
    trainer.step += 1
    carried = job.data.state
    assert all(s.grad_fn is not None for s in carried)  # the state keeps its graph until...
    inputs, _ = job.data.chunks[trainer.step]
    received = []
    model = job.model

    def spy(ids, state, **options):
        received.append(state)
        return model(ids, state, **options)

    job.model = spy
    trainer.train_step()  # ...the border, where the data source detaches it
    detached = received[0]
    assert all(torch.equal(a, b) for a, b in zip(detached, carried, strict=True))
    assert all(s.grad_fn is None and not s.requires_grad for s in detached)
    leaf = tuple(s.clone().requires_grad_() for s in detached)
    logits, _ = trainer.model(inputs, leaf)
    logits.sum().backward()
    assert all(s.grad is not None for s in leaf)  # a gradient reaches the border, no further


def poison_step(monkeypatch, at_step, times=1):
    """Make the weights NaN just before step `at_step`, the first `times` times it is reached."""
    original = trainer_module.Trainer.train_step
    remaining = [times]

    def train_step(self):
        if self.step == at_step and remaining[0] > 0:
            remaining[0] -= 1
            with torch.no_grad():
                self.model.head.bias.fill_(float("nan"))
        return original(self)

    monkeypatch.setattr(trainer_module.Trainer, "train_step", train_step)


def test_nonfinite_abort_keeps_the_last_good_checkpoint(small_text, tmp_path, monkeypatch):
    poison_step(monkeypatch, 6)
    with pytest.raises(TrainingAborted, match=r"non-finite loss .* at step 6.*step-00000004"):
        train(tiny(small_text, nonfinite="abort"), tmp_path / "run", log=quiet, progress=False)
    weights = final_weights(tmp_path / "run")
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_nonfinite_rollback_restores_and_halves_the_learning_rate(
    small_text, tmp_path, monkeypatch
):
    poison_step(monkeypatch, 6)
    messages = []
    result = train(
        tiny(small_text, nonfinite="rollback"),
        tmp_path / "run",
        log=messages.append,
        progress=False,
    )
    assert result.steps == 12
    assert any("rolled back to step 4, learning rate x0.5" in m for m in messages)
    assert all(torch.isfinite(w).all() for w in final_weights(tmp_path / "run").values())


def test_rollback_gives_up_when_the_failure_repeats(small_text, tmp_path, monkeypatch):
    poison_step(monkeypatch, 6, times=100)
    with pytest.raises(TrainingAborted, match=r"rolled back 5 times"):
        train(tiny(small_text, nonfinite="rollback"), tmp_path / "run", log=quiet, progress=False)


def test_nonfinite_skip_never_saves_a_broken_model(small_text, tmp_path, monkeypatch):
    original = trainer_module.Trainer.train_step

    def train_step(self):  # a NaN gradient at step 6 only: the weights must stay finite
        if self.step != 6:
            return original(self)
        original_backward = torch.Tensor.backward

        def backward(tensor, *args, **kwargs):
            original_backward(tensor, *args, **kwargs)
            self.model.head.bias.grad.fill_(float("nan"))

        monkeypatch.setattr(torch.Tensor, "backward", backward)
        try:
            return original(self)
        finally:
            monkeypatch.setattr(torch.Tensor, "backward", original_backward)

    monkeypatch.setattr(trainer_module.Trainer, "train_step", train_step)
    messages = []
    train(tiny(small_text, nonfinite="skip"), tmp_path / "run", log=messages.append, progress=False)
    assert any("non-finite gradient norm" in m and "skipped" in m for m in messages)
    assert all(torch.isfinite(w).all() for w in final_weights(tmp_path / "run").values())


def test_resume_refuses_another_architecture_and_names_it(small_text, tmp_path):
    train(tiny(small_text, max_steps=4), tmp_path / "run", log=quiet, progress=False)
    with pytest.raises(
        UsageError,
        match=r"cell 'lstm' -> 'gru'.*hidden_size 16 -> 32",
    ):
        train(
            tiny(small_text, hidden_size=32, cell="gru"), tmp_path / "run", resume=True, log=quiet
        )


def test_an_existing_run_is_never_overwritten(small_text, tmp_path):
    train(tiny(small_text, max_steps=4), tmp_path / "run", log=quiet, progress=False)
    with pytest.raises(UsageError, match="already holds a training run"):
        train(tiny(small_text), tmp_path / "run", log=quiet)


@pytest.mark.slow
def test_time_budget_stops_the_run(small_text, tmp_path):
    result = train(
        tiny(small_text, max_steps=100000, time_budget=0.02),
        tmp_path / "run",
        log=quiet,
        progress=False,
    )
    assert result.stopped_by in ("time_budget", "max_steps")
    assert result.steps < 100000


def test_a_budget_that_runs_out_during_an_evaluation_ends_on_it(small_text, tmp_path, monkeypatch):
    import rnnkit.training.language_model as language_model

    def slow(*args, **kwargs):  # an evaluation that takes the rest of the 1.2 s budget
        time.sleep(1.3)
        return real(*args, **kwargs)

    real = language_model.evaluate
    monkeypatch.setattr(language_model, "evaluate", slow)
    run = tmp_path / "run"
    result = train(tiny(small_text, max_steps=100000, time_budget=0.02, eval_interval=5), run,
                   log=quiet, progress=False)  # fmt: skip
    assert result.stopped_by == "time_budget"
    # one evaluation, at the last step: not a step more and a second evaluation past the budget
    assert len([loss for loss in losses(run, "val_loss") if loss]) == 1
    assert result.steps <= 5


def test_a_run_killed_before_its_first_checkpoint_can_be_started_again(small_text, tmp_path):
    run = tmp_path / "run"
    train(tiny(small_text, max_steps=4), run, log=quiet, progress=False)
    shutil.rmtree(run / "checkpoints")  # as if killed (-9) before the first checkpoint
    with pytest.raises(UsageError, match=r"has no checkpoint.*rnnkit train --out"):
        train(tiny(small_text), run, resume=True, log=quiet)
    result = train(tiny(small_text, max_steps=4), run, log=quiet, progress=False)
    assert result.steps == 4


def test_a_short_run_caps_its_warm_up_and_says_so(small_text, tmp_path):
    """--max-steps 20 with the default warm-up of 100 would end at a fifth of the peak rate."""
    assert TrainConfig(max_steps=20).warmup == 2
    assert TrainConfig(max_steps=20, warmup_steps=1).warmup == 1
    assert TrainConfig().warmup == TrainConfig().warmup_steps  # 2,000 steps: 100 fits
    assert TrainConfig(time_budget=5.0, warmup_steps=50).warmup == 50  # length not in steps
    said = []
    train(tiny(small_text, max_steps=20, warmup_steps=100, lr=1e-2, min_lr=1e-2), tmp_path / "run",
          log=said.append)  # fmt: skip
    rates = [float(rate) for rate in losses(tmp_path / "run", "lr")]
    assert rates[0] == pytest.approx(5e-3) and rates[1:] == pytest.approx([1e-2] * 19)
    assert any("warm-up: 2 steps instead of --warmup-steps 100" in line for line in said)


def test_both_configurations_share_one_resume_merge_and_one_warm_up_rule(tmp_path):
    from rnnkit.tasks.config import TaskConfig

    said = []
    for saved in (TrainConfig(), TaskConfig()):
        merged = saved.resumed(tmp_path, {"lr": 1e-3, "clip_norm": None}, said.append)
        assert merged.lr == 1e-3 and merged.clip_norm == saved.clip_norm  # None: not given
        assert said[-1] == "resuming with changed settings: lr -> 0.001"
        with pytest.raises(UsageError, match=r"cannot resume .* with hidden_size \d+ -> 7"):
            saved.resumed(tmp_path, {"hidden_size": 7}, said.append)
        with pytest.raises(UsageError, match=r"--min-lr .* must not exceed --lr"):
            saved.resumed(tmp_path, {"lr": 1e-9}, said.append)
        assert saved.warmup_for(100) == min(saved.warmup_steps, 10)
        assert saved.warmup_for(None) == saved.warmup_steps  # a run not counted in steps
