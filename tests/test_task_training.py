"""Task runs through the one trainer: exact resume (Ctrl-C and kill -9), step and time limits,
the moving average, and data parallelism under torchrun."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from torch.testing import assert_close

from helpers import final_weights, losses, quiet
from rnnkit.cli import main
from rnnkit.tasks import get_task
from rnnkit.tasks.training import train

pytestmark = pytest.mark.slow  # training runs and subprocesses: `make test` runs them

SMALL = dict(train_examples=64, eval_examples=8, hidden_size=8, embedding_size=4, batch_size=16)
"""4 steps an epoch."""


def interrupted(name: str, at_call: int):
    """The task `name`, sending itself SIGINT during its `at_call`-th training step."""
    calls = []

    class Interrupted(type(get_task(name))):
        def loss(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == at_call:
                os.kill(os.getpid(), signal.SIGINT)  # as if Ctrl-C arrived during this step
            return super().loss(*args, **kwargs)

    return Interrupted()


@pytest.mark.parametrize(
    ("name", "settings", "stop"),
    [
        ("dates", dict(teacher_forcing=0.5, scheduled_sampling=True), 6),  # coin flips, dropout
        ("sentiment", dict(ema_decay=0.9), 5),  # the moving average; a stop after an epoch
        ("caption", {}, 2),
        ("pos", {}, 7),
    ],  # translate is an EncoderDecoderTask as dates is: the same loss, batches and decoder
)
def test_a_stopped_task_run_resumes_bit_for_bit(tmp_path, name, settings, stop):
    task = get_task(name)
    config = task.config(**SMALL, max_epochs=3, **settings)
    train(task, config, tmp_path / "straight", log=quiet)

    result = train(interrupted(name, stop), config, tmp_path / "resumed", log=quiet)
    assert (result["stopped_by"], result["exit_code"], result["steps"]) == ("SIGINT", 130, stop)
    resumed = train(task, config, tmp_path / "resumed", log=quiet, resume=True)

    assert resumed["steps"] == 12
    assert losses(tmp_path / "resumed") == losses(tmp_path / "straight")
    assert losses(tmp_path / "resumed", "val_loss") == losses(tmp_path / "straight", "val_loss")
    kinds = ("model", "training_weights") if "ema_decay" in settings else ("model",)
    for kind in kinds:
        straight, again = (
            final_weights(tmp_path / "straight", kind),
            final_weights(tmp_path / "resumed", kind),
        )
        assert all(torch.equal(straight[k], again[k]) for k in straight)


def command(out, *extra) -> list[str]:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()]
    return [sys.executable, "-m", "rnnkit", "task", "dates", "train", *flags, *extra,
            "--threads", "1", "--out", str(out)]  # fmt: skip


@pytest.fixture
def one_thread():
    """Train in this process on one thread, as the subprocesses' `--threads 1` do; then give
    the other tests their threads back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_a_killed_task_run_resumes_from_its_last_checkpoint(tmp_path, one_thread):
    flags = ["--max-epochs", "5"]
    task = get_task("dates")
    train(task, task.config(**SMALL, max_epochs=5, threads=1), tmp_path / "straight", log=quiet)
    process = subprocess.Popen(
        command(tmp_path / "killed", *flags), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 60
    while time.time() < deadline and not list((tmp_path / "killed").glob("checkpoints/step-*")):
        time.sleep(0.02)
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = sorted(p.name for p in (tmp_path / "killed" / "checkpoints").glob("step-*"))
    assert saved and saved[-1] < "step-00000020"
    again = [sys.executable, "-m", "rnnkit", "task", "dates", "train"]
    resumed = subprocess.run(
        [*again, "--resume", str(tmp_path / "killed")], capture_output=True, text=True
    )  # the saved settings
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert losses(tmp_path / "killed") == losses(tmp_path / "straight")


def test_resume_refuses_another_model_and_accepts_more_epochs(tmp_path, capsys):
    out = str(tmp_path / "run")
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()]
    assert main(["task", "dates", "train", "--out", out, *flags, "--max-epochs", "1"]) == 0
    assert main(["task", "dates", "train", "--resume", out, "--hidden-size", "16"]) == 2
    assert "cannot resume" in capsys.readouterr().err
    assert main(["task", "dates", "train", "--resume", out, "--max-epochs", "2"]) == 0
    assert "resuming with changed settings: max_epochs -> 2" in capsys.readouterr().err
    assert losses(tmp_path / "run")[-1] and len(losses(tmp_path / "run")) == 8


def test_max_steps_and_time_budget_end_a_task_run(tmp_path):
    task = get_task("sentiment")
    result = train(task, task.config(**SMALL, max_steps=6), tmp_path / "steps", log=quiet)
    assert result["steps"] == 6 and result["stopped_by"] == "max_steps"
    assert (tmp_path / "steps" / "test_metrics.json").is_file()  # the end is scored
    config = task.config(**SMALL, max_epochs=10_000, time_budget=0.02)
    started = time.perf_counter()
    result = train(task, config, tmp_path / "budget", log=quiet)
    assert result["stopped_by"] == "time_budget" and time.perf_counter() - started < 30


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_two_processes_train_a_task_as_one_process_on_the_global_batch(tmp_path, one_thread):
    flags = ["--dropout", "0", "--max-epochs", "2", "--threads", "1", "--train-examples", "64",
             "--eval-examples", "8", "--batch-size", "16", "--hidden-size", "8"]  # fmt: skip
    assert main(["task", "sentiment", "train", *flags, "--out", str(tmp_path / "one")]) == 0
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"]
    launched = subprocess.run(
        [*torchrun, "-m", "rnnkit", "task", "sentiment", "train", *flags,
         "--out", str(tmp_path / "two")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr[-3000:]
    one, two = final_weights(tmp_path / "one"), final_weights(tmp_path / "two")
    for name in one:  # the all-reduce sums in another order: equal to float32 round-off
        assert_close(two[name], one[name], rtol=1e-4, atol=1e-5)
    assert len(losses(tmp_path / "two")) == 8  # one metrics row per step, from rank 0 only


def test_a_task_trains_on_the_device_it_is_given(tmp_path, capsys):
    task = get_task("dates")
    train(task, task.config(**SMALL, max_steps=6, device="cpu"), tmp_path / "cpu", log=quiet)
    assert len(losses(tmp_path / "cpu")) == 6
    if torch.cuda.is_available():
        config = task.config(**SMALL, max_steps=6, device="cuda")
        result = train(task, config, tmp_path / "cuda", log=quiet)
        assert result["stopped_by"] == "max_steps"  # scored on the test split on the GPU too
        # The same weights and batches: CUDA's sums differ from the CPU's only in rounding.
        assert_close(losses(tmp_path / "cuda"), losses(tmp_path / "cpu"), rtol=1e-3, atol=1e-3)
    else:
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()]
        args = ["task", "dates", "train", "--out", str(tmp_path / "none"), *flags]
        assert main([*args, "--device", "cuda"]) == 2
        assert "no CUDA GPU is available here; use --device cpu" in capsys.readouterr().err
        assert not (tmp_path / "none" / "checkpoints").exists()  # nothing started
