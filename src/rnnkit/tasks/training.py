"""Training any task with the one trainer (training/trainer.py): the task's job, and `train()`.

    RUN/task.json          which task, its configuration, its vocabularies, its input limit
    RUN/metrics.csv        one row per step: step, train_loss, val_loss, lr, grad_norm,
                           ms_per_step, epoch, dev_metric (the last three at each epoch's end)
    RUN/loss.png           the loss curve
    RUN/checkpoints/       atomic, checksummed checkpoints (training/checkpoint.py); best.json
    RUN/test_metrics.json  the best checkpoint on the test split, and the baseline

Each epoch visits the training examples in an order drawn from (seed, epoch); at its end the
dev split is scored and a checkpoint saved; the best one is picked by the task's main metric
on dev. At the end the best checkpoint is scored on the test split. Like `rnnkit train`, a run
stopped by Ctrl-C, SIGTERM or `kill -9` continues exactly with `--resume RUN`, and torchrun
trains it data-parallel.
"""

import dataclasses
import json
from pathlib import Path

import torch

from rnnkit.tasks.base import Task, on_device
from rnnkit.tasks.config import TaskConfig
from rnnkit.tasks.runner import load_run, read_task_run
from rnnkit.training.cell_record import record_cell, run_cell
from rnnkit.training.data_sources import ShuffledBatches
from rnnkit.training.launch import train_job
from rnnkit.training.settings import refuse_started_run
from rnnkit.training.trainer import Evaluation, Settings, device_for

INPUT_LIMIT_FACTOR = 2  # inputs up to twice the longest training input are accepted
KEEP_CHECKPOINTS = 2  # recent checkpoints kept (and the best)
LOG_INTERVAL = 50


def train(
    task: Task, config: TaskConfig, out: Path, log=print, progress: bool = False,
    resume: bool = False,
) -> dict:  # fmt: skip
    """Train `task` into the run directory `out` (or continue it, `resume`); returns the test
    metrics (also written to test_metrics.json), or, when stopped by a signal,
    {"stopped_by", "exit_code", "steps"}."""
    config.validate()
    job, result, is_main = train_job(
        lambda log, ranks: TaskJob(task, config, Path(out), resume, log, ranks),
        config.device, out, resume, log, progress,
    )  # fmt: skip
    if result.exit_code or not is_main:
        return {"stopped_by": result.stopped_by, "exit_code": result.exit_code,
                "steps": result.steps}  # fmt: skip
    return job.test(result, log)


def resumed_config(run_dir: Path, task: Task, given: dict, log) -> TaskConfig:
    """The saved configuration of a task run, with the `given` settings (not None) over it;
    a change of the model, the vocabulary or the batches is refused."""
    return read_task_run(run_dir, task)[0].resumed(run_dir, given, log)


class TaskJob:
    metric_columns = ("epoch", "dev_metric")
    loss_label = "loss (nats per token)"

    def __init__(self, task: Task, config: TaskConfig, run_dir: Path, resume: bool, log, ranks):
        if config.threads:
            torch.set_num_threads(config.threads)
        self.task, self.config, self.run_dir, self.log = task, config, run_dir, log
        self.device = device_for(config.device, ranks.local_rank)
        if resume:
            _, self.vocabularies, self.limit = read_task_run(run_dir, task)
        else:
            refuse_started_run(run_dir, "task run")
        torch.manual_seed(config.seed + ranks.rank)  # the weights come from rank 0
        self.splits = splits = task.load_splits(config)
        if config.train_examples:
            splits.train = splits.train[: config.train_examples]
        if config.eval_examples:
            splits.dev = splits.dev[: config.eval_examples]
            splits.test = splits.test[: config.eval_examples]
        if not resume:
            self.vocabularies = task.vocabularies(splits.train, config)
            self.limit = INPUT_LIMIT_FACTOR * max(task.source_length(e) for e in splits.train)
        cell = run_cell(config.cell, run_dir if resume else None)  # a file's: checked
        model = task.build_model(dataclasses.replace(config, cell=cell), self.vocabularies)
        self.model = model.to(self.device)
        if not resume:
            task.initialise(self.model, config, log)
        self.data = ShuffledBatches(
            splits.train,
            lambda examples, size, generator: (
                on_device(batch, self.device)
                for batch in task.batches(examples, self.vocabularies, size, generator)
            ),
            config.batch_size,
            config.seed,
            ranks,
        )
        step_limit = config.max_steps or config.max_epochs * self.data.steps_per_epoch
        self.settings = Settings(
            lr=config.lr,
            min_lr=config.min_lr,
            warmup=config.warmup_for(step_limit),
            weight_decay=config.weight_decay,
            betas=(0.9, 0.999),  # torch's defaults, which the tasks' settings were tuned with
            clip_norm=config.clip_norm,
            nonfinite=config.nonfinite,
            ema_decay=config.ema_decay,
            time_budget=config.time_budget,
            step_limit=step_limit,
            keep_checkpoints=KEEP_CHECKPOINTS,
            log_interval=LOG_INTERVAL,
        )
        if ranks.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            record_cell(run_dir, config.cell)
            (run_dir / "task.json").write_text(json.dumps(self.document(), indent=1))

    def document(self) -> dict:
        return {
            "task": self.task.name,
            "config": self.config.to_json(),
            "vocabularies": {k: v.to_json() for k, v in self.vocabularies.items()},
            "input_limit": self.limit,
        }

    def describe(self) -> str:
        parameters = sum(p.numel() for p in self.model.parameters())
        return (
            f"{self.task.name} ({self.task.shape}): {self.splits.sizes()} examples; "
            f"{parameters:,} parameters; {self.data.steps_per_epoch} steps an epoch; "
            f"into {self.run_dir}"
        )

    def config_document(self) -> dict:
        return self.config.to_json()

    def objective(self, batch, step: int, progress: float):
        config = self.config
        ratio = config.teacher_forcing
        if config.scheduled_sampling:  # linearly from 1 down to the final ratio
            ratio = 1.0 - min(1.0, progress) * (1.0 - config.teacher_forcing)
        # The decoder's coin flips of step i, drawn from (seed, i): the same after a resume.
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        loss = self.task.loss(self.model, batch, config, ratio, generator)
        return loss, loss, None

    def evaluates_at(self, step: int) -> bool:
        return self.data.starts_epoch(step)  # the end of an epoch

    def evaluate(self, step: int, should_stop) -> Evaluation:
        task = self.task
        dev = task.evaluate(self.model, self.splits.dev, self.vocabularies, self.config, beam=False)
        return Evaluation(
            score=-dev[task.metric],  # higher is better
            loss=dev["loss"],
            summary=f"epoch {self.data.epoch(step - 1)} | dev loss {dev['loss']:.4f} | "
            f"dev {task.metric} {dev[task.metric]:.4f}",
            columns={"dev_metric": dev[task.metric]},
            document={"dev": dev},
        )

    def row(self, step: int, evaluation: Evaluation | None) -> dict:
        row = {"epoch": self.data.epoch(step - 1)}
        if evaluation is not None:
            row["dev_metric"] = f"{evaluation.columns['dev_metric']:.6f}"
        return row

    def test(self, result, log) -> dict:
        """Score the best checkpoint on the test split; write test_metrics.json."""
        task, splits = self.task, self.splits
        model, saved = load_run(self.run_dir, task, warn=log)[:2]
        model.to(self.device)
        parameters = sum(p.numel() for p in model.parameters())
        results = {
            "task": task.name,
            "checkpoint": saved.name,
            "test": task.evaluate(model, splits.test, self.vocabularies, self.config),
            "dev": json.loads((saved / "trainer.json").read_text())["evaluation"]["dev"],
            "baseline": task.baseline(splits, self.vocabularies, self.config),
            "examples": {
                "train": len(splits.train),
                "dev": len(splits.dev),
                "test": len(splits.test),
            },
            "parameters": parameters,
            "steps": result.steps,
            "train_seconds": round(result.train_seconds, 1),
            "stopped_by": result.stopped_by,
            "exit_code": 0,
        }
        (self.run_dir / "test_metrics.json").write_text(json.dumps(results, indent=1))
        log(f"test: {_show(results['test'])}")
        if results["baseline"]:
            log(f"baseline: {_show(results['baseline'])}")
        return results


def _show(metrics: dict) -> str:
    return ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
    )
