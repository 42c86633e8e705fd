"""The one trainer every model trains with: the language model and every task.

    next batch  ->  step (objective, finite check, backward, gradient average over ranks,
                          finite check, clip, AdamW, moving average)
                ->  maybe evaluate  ->  maybe save

A product is a *job* (training/language_model.py, tasks/training.py): its model, its data
source (data_sources.py), its objective, its evaluation and its settings. The trainer owns
everything else, once: the step counter, the schedule (schedule.py), the parameter groups
(optimizer.py), the non-finite policies, SIGINT/SIGTERM, metrics.csv, the progress bar, the
loss curve and the checkpoints. Everything that decides step i+1 is saved (weights, optimizer
moments, the moving average, step, the data source's state, every rank's dropout RNG, the time
spent), so a resumed run continues exactly as the uninterrupted one would have (bit for bit on
CPU with the same torch and thread count).
"""

import csv
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from rnnkit.errors import UsageError
from rnnkit.training import checkpoint
from rnnkit.training.averaging import WeightAverage
from rnnkit.training.distributed import Ranks
from rnnkit.training.optimizer import build_optimizer, optimizer_from_plain, optimizer_to_plain
from rnnkit.training.plot import write_loss_curve
from rnnkit.training.schedule import learning_rate
from rnnkit.training.signals import stop_on_signals

MAX_SKIPPED_IN_A_ROW = 10  # non-finite steps in a row before a run gives up
MAX_ROLLBACKS = 5
METRICS = ["step", "train_loss", "val_loss", "lr", "grad_norm", "ms_per_step"]


class TrainingAborted(UsageError):
    """Training stopped on a non-finite loss or gradient (policy `abort`, or too many skips)."""

    exit_code = 3


@dataclass(frozen=True)
class Settings:
    """What the trainer takes from a run's configuration (each job fills it in)."""

    lr: float  # peak learning rate
    min_lr: float  # at the end of the cosine decay
    warmup: int  # linear warm-up steps
    weight_decay: float  # on matrices only (optimizer.py)
    betas: tuple[float, float]  # AdamW's moment decays
    clip_norm: float  # 0: no clipping
    nonfinite: str  # skip, rollback or abort
    ema_decay: float  # 0: no moving average
    time_budget: float  # minutes; 0: none
    step_limit: int  # the most steps the run may take
    keep_checkpoints: int  # recent ones; the best is always kept
    log_interval: int  # a log line every N steps when there is no progress bar


@dataclass
class Evaluation:
    score: float  # lower is better: it picks the best checkpoint
    loss: float  # the validation loss: metrics.csv's val_loss column
    summary: str  # for the log, e.g. "validation 1.4213 nats/char"
    columns: dict = field(default_factory=dict)  # the job's own metrics.csv columns
    document: dict = field(default_factory=dict)  # saved with the checkpoint and in best.json


class Job(Protocol):
    config: Any  # its run's settings (a RunSettings)
    settings: Settings
    model: torch.nn.Module
    data: Any  # a data source (data_sources.py)
    device: torch.device
    metric_columns: tuple[str, ...]  # metrics.csv columns after METRICS
    loss_label: str  # the y axis of loss.png

    def describe(self) -> str: ...  # the first log line
    def config_document(self) -> dict: ...  # saved with each checkpoint
    def objective(self, batch, step: int, progress: float) -> tuple[Tensor, Tensor, Any]:
        """(what backward minimises, the loss to log, what the data source carries on)"""

    def evaluates_at(self, step: int) -> bool: ...
    def evaluate(self, step: int, should_stop) -> Evaluation | None: ...  # None: stopped
    def row(self, step: int, evaluation: Evaluation | None) -> dict: ...  # the job's columns


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    val_loss: float | None
    best_score: float | None
    stopped_by: str  # "max_steps", "time_budget", "SIGINT" or "SIGTERM"
    exit_code: int  # 0, or 130 / 143 after a signal
    session_steps: int  # the steps this session took (not those of earlier sessions)
    train_seconds: float  # their time, evaluation and saving left out


class Trainer:
    def __init__(self, job: Job, run_dir: Path, resume: bool, log, ranks: Ranks) -> None:
        self.job = job
        self.model = job.model
        self.data = job.data
        self.settings = settings = job.settings
        self.run_dir = run_dir
        self.log = log
        self.ranks = ranks
        self.device = job.device
        ranks.broadcast_module(self.model)  # every rank starts from rank 0's weights
        self.optimizer = build_optimizer(
            self.model, settings.lr, settings.weight_decay, settings.betas
        )
        # What evaluation, the best checkpoint and sampling use (averaging.py); None: the raw
        # weights.
        self.average = WeightAverage(self.model, settings.ema_decay) if settings.ema_decay else None
        self.step = 0  # steps taken; the trainer is its only owner
        self.lr_scale = 1.0  # halved by each rollback
        self.elapsed = 0.0  # wall-clock seconds of this run so far, over all its sessions
        self.best_score: float | None = None
        self.best_checkpoint: str | None = None
        self.best_summary = ""  # the best evaluation, for the log
        self.last_evaluation: Evaluation | None = None
        self.last_checkpoint: Path | None = None
        self.skipped_in_a_row = 0
        self.metrics_file = None  # open while run() runs, on rank 0 only
        self.columns = METRICS + list(job.metric_columns)
        if resume:
            self._restore(checkpoint.load_latest_good(run_dir, warn=log))
        elif ranks.is_main:
            _start_metrics(run_dir, self.columns)
        ranks.barrier()

    # -- checkpoints --------------------------------------------------------------------------

    def save(self) -> Path:
        """Write a checkpoint (rank 0; every rank takes part in gathering the states)."""
        broken = [n for n, p in self.model.named_parameters() if not torch.isfinite(p).all()]
        if broken:  # never let a broken model displace a good checkpoint
            raise TrainingAborted(
                f"not saving step {self.step}: non-finite weights in {', '.join(broken)}; the "
                f"last checkpoint {self.last_checkpoint} is intact. Lower --lr and resume"
            )
        rng = self.ranks.gather_rows(torch.get_rng_state().unsqueeze(0), dim=0)  # (ranks, ·)
        trainer_tensors = {"rng.torch": rng, **self.data.state_tensors()}
        if self.device.type == "cuda":
            cuda_rng = torch.cuda.get_rng_state(self.device).unsqueeze(0).to(self.device)
            trainer_tensors["rng.cuda"] = self.ranks.gather_rows(cuda_rng, dim=0).cpu()
        path = self.run_dir / "checkpoints" / f"{checkpoint.PREFIX}{self.step:08d}"
        if self.ranks.is_main:
            path = self._write_checkpoint(trainer_tensors)
        self.ranks.barrier()
        self.last_checkpoint = path
        return path

    def _write_checkpoint(self, trainer_tensors: dict) -> Path:
        optimizer_tensors, optimizer_document = optimizer_to_plain(self.optimizer)
        trainer_document = {
            "step": self.step,
            "lr_scale": self.lr_scale,
            "elapsed_seconds": self.elapsed,
            "best_score": self.best_score,
            "best_checkpoint": self.best_checkpoint,
            "best_summary": self.best_summary,
            "threads": torch.get_num_threads(),
            "world_size": self.ranks.world_size,
            "averaged_steps": self.average.steps if self.average is not None else 0,
            "evaluation": self.last_evaluation.document if self.last_evaluation else None,
        }
        # "model" holds the weights to use (sample, eval, best); with an average, the raw
        # weights the optimizer trains are kept beside it for resuming.
        raw = self.model.state_dict()
        weights = (
            {"model": self.average.state_dict(), "training_weights": raw}
            if self.average is not None
            else {"model": raw}
        )
        path = checkpoint.save_checkpoint(
            self.run_dir,
            self.step,
            tensors={**weights, "optimizer": optimizer_tensors, "trainer": trainer_tensors},
            documents={
                "optimizer": optimizer_document,
                "trainer": trainer_document,
                "config": self.job.config_document(),
            },
        )
        best = self.run_dir / "checkpoints" / self.best_checkpoint if self.best_checkpoint else None
        checkpoint.rotate(self.run_dir, self.settings.keep_checkpoints, best)
        return path

    def _restore(self, found) -> None:
        path, tensors, documents = found
        averaged = "training_weights" in tensors
        checkpoint.load_weights(
            self.model, tensors["training_weights" if averaged else "model"], path
        )
        optimizer_from_plain(self.optimizer, tensors["optimizer"], documents["optimizer"])
        trainer = documents["trainer"]
        saved_ranks = trainer.get("world_size", 1)
        if saved_ranks != self.ranks.world_size:
            raise UsageError(
                f"{path} was saved by {saved_ranks} process(es); resume it with the same number "
                f"(torchrun --nproc_per_node={saved_ranks}) to continue exactly"
            )
        self.step = trainer["step"]
        self.lr_scale = trainer["lr_scale"]
        self.elapsed = trainer["elapsed_seconds"]
        self.best_score = trainer.get("best_score", trainer.get("best_val_loss"))
        self.best_checkpoint = trainer["best_checkpoint"]
        self.best_summary = trainer.get("best_summary", "")
        if self.average is not None:  # the saved average, or (none saved) a new one from here
            self.average = WeightAverage(self.model, self.settings.ema_decay)
            if averaged:
                self.average.load_state_dict(tensors["model"], trainer["averaged_steps"])
        rank = self.ranks.rank
        torch.set_rng_state(tensors["trainer"]["rng.torch"][rank])
        if "rng.cuda" in tensors["trainer"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["trainer"]["rng.cuda"][rank], self.device)
        self.data.load_state(tensors["trainer"])
        self.last_checkpoint = path
        if self.ranks.is_main:  # later rows will be written again
            _truncate_metrics(self.run_dir, self.step)
        self.log(f"resumed from {path} (step {self.step})")

    # -- one step -----------------------------------------------------------------------------

    def train_step(self) -> tuple[float, float] | None:
        """One optimizer step on batch `self.step`; None when it was skipped (non-finite)."""
        settings = self.settings
        batch = self.data.batch(self.step)
        progress = self.progress()
        lr = self.lr_scale * learning_rate(
            self.step, progress, settings.lr, settings.min_lr, settings.warmup
        )
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        objective, loss, carried = self.job.objective(batch, self.step, progress)
        self.optimizer.zero_grad(set_to_none=True)
        if self.ranks.any(not torch.isfinite(objective)):
            return self._non_finite("loss", self.ranks.mean(objective.item()))
        objective.backward()
        parameters = [p for p in self.model.parameters() if p.requires_grad]
        self.ranks.average_gradients(parameters)
        parameters = [p for p in parameters if p.grad is not None]
        # Check before clipping: clipping a NaN gradient would spread NaN into every gradient.
        norm = torch.nn.utils.get_total_norm([p.grad for p in parameters])
        if not torch.isfinite(norm):
            return self._non_finite("gradient norm", norm.item())
        if settings.clip_norm > 0:
            torch.nn.utils.clip_grads_with_norm_(parameters, settings.clip_norm, norm)
        self.optimizer.step()
        if self.average is not None:
            self.average.update()
        self.data.carry(carried)
        self.skipped_in_a_row = 0
        return self.ranks.mean(loss.item()), norm.item()

    def progress(self) -> float:
        """How far through the run we are, 0 to 1: by steps, or by time with a time budget,
        whichever is further. With several processes the time is rank 0's, so every rank
        uses the same rate."""
        by_steps = self.step / self.settings.step_limit
        if not self.settings.time_budget:
            return by_steps
        by_time = self.ranks.from_main(self.elapsed) / (60 * self.settings.time_budget)
        return max(by_steps, by_time)

    def _non_finite(self, what: str, value: float):
        policy = self.settings.nonfinite
        where = f"non-finite {what} ({value}) at step {self.step}"
        kept = (
            f"the last checkpoint {self.last_checkpoint} is intact"
            if self.last_checkpoint
            else "nothing was saved"
        )
        self.optimizer.zero_grad(set_to_none=True)
        if policy == "abort":
            raise TrainingAborted(f"{where}; {kept}. Lower --lr, or use --nonfinite skip")
        if policy == "rollback" and self.last_checkpoint is not None:
            if self.lr_scale <= 0.5**MAX_ROLLBACKS:
                raise TrainingAborted(
                    f"{where}; rolled back {MAX_ROLLBACKS} times and it came back each time; "
                    f"{kept}. Lower --lr or look at the data near this step"
                )
            if self.metrics_file is not None:
                self.metrics_file.flush()
            found = checkpoint.load_latest_good(self.run_dir, warn=self.log)
            scale = self.lr_scale * 0.5
            self._restore(found)
            self.lr_scale = scale
            self.log(f"{where}: rolled back to step {self.step}, learning rate x{scale:g}")
            return None
        self.skipped_in_a_row += 1
        if self.skipped_in_a_row > MAX_SKIPPED_IN_A_ROW:
            raise TrainingAborted(
                f"{where}, {self.skipped_in_a_row} steps in a row; {kept}. Lower --lr"
            )
        self.log(f"{where}: step skipped (weights unchanged)")
        self.step += 1
        return None

    # -- the loop -----------------------------------------------------------------------------

    def run(self, progress: bool) -> TrainResult:
        settings = self.settings
        self.log(self.job.describe())
        self.model.train()
        bar = self._progress_bar(progress)
        stopped_by, val_loss, session_steps, train_seconds = "max_steps", None, 0, 0.0
        budget = 60 * settings.time_budget
        if self.ranks.is_main:
            self.metrics_file = (self.run_dir / "metrics.csv").open("a", newline="")
            metrics = csv.DictWriter(self.metrics_file, fieldnames=self.columns)
        announce = lambda name: self.log(f"\n{name}: stopping after this step (again to abort)")  # noqa: E731
        with stop_on_signals(announce) as stop:
            try:
                while self.step < settings.step_limit:
                    started = time.perf_counter()
                    result = self.train_step()
                    seconds = time.perf_counter() - started
                    train_seconds += seconds
                    if result is None:  # skipped or rolled back
                        self.elapsed += seconds
                        continue
                    loss, norm = result
                    self.step += 1
                    session_steps += 1
                    # All ranks agree, so they leave the loop at the same step.
                    spent = self.elapsed + time.perf_counter() - started
                    out_of_time = self.ranks.any(budget > 0 and spent >= budget)
                    stopping = self.ranks.any(bool(stop))
                    finishing = self.step >= settings.step_limit or out_of_time or stopping
                    evaluation = None
                    if self.job.evaluates_at(self.step) or (finishing and not stopping):
                        evaluation = self._validate(should_stop=lambda: bool(stop))
                        val_loss = evaluation.loss if evaluation is not None else val_loss
                    lr = self.optimizer.param_groups[0]["lr"]
                    if self.ranks.is_main:
                        metrics.writerow(
                            {"step": self.step, "train_loss": f"{loss:.6f}",
                             "val_loss": "" if evaluation is None else f"{evaluation.loss:.6f}",
                             "lr": f"{lr:.6g}", "grad_norm": f"{norm:.4f}",
                             "ms_per_step": f"{1000 * seconds:.1f}",
                             **self.job.row(self.step, evaluation)}
                        )  # fmt: skip
                    bar.set_postfix(step=self.step, loss=f"{loss:.3f}", val=_rounded(val_loss))
                    if evaluation is not None:
                        self.log(f"step {self.step} | {evaluation.summary} | {spent:.0f} s")
                    elif not progress and self.step % settings.log_interval == 0:
                        self.log(
                            f"step {self.step} | loss {loss:.4f} | lr {lr:.2e} | "
                            f"norm {norm:.2f} | {1000 * seconds:.1f} ms/step"
                        )
                    if evaluation is not None or finishing:
                        self._save_and_plot()
                    self.elapsed += time.perf_counter() - started  # the step, eval and saving
                    bar.update(min(round(self.elapsed), round(budget)) - bar.n if budget else 1)
                    if evaluation is not None and not out_of_time:
                        # the budget ran out during this step's evaluation: stop on it, rather
                        # than take one more step and evaluate it again past the budget
                        out_of_time = self.ranks.any(budget > 0 and self.elapsed >= budget)
                    if stopping or out_of_time:
                        stopped_by = (stop.name or "SIGTERM") if stopping else "time_budget"
                        break
            finally:
                bar.close()
                if self.metrics_file is not None:
                    self.metrics_file.close()
        exit_code = (stop.exit_code or 143) if stopped_by in ("SIGINT", "SIGTERM") else 0
        if exit_code:
            self.log(
                f"{stopped_by}: saved step {self.step} to {self.last_checkpoint}; "
                f"continue with --resume {self.run_dir}"
            )
        else:
            last = self.last_evaluation.summary if self.last_evaluation else "not evaluated"
            best = f" (best: {self.best_summary})" if self.best_summary else ""
            self.log(
                f"done: {self.step} steps, {last}{best}; checkpoints in "
                f"{self.run_dir / 'checkpoints'}"
            )
        return TrainResult(
            run_dir=self.run_dir,
            steps=self.step,
            val_loss=val_loss,
            best_score=self.best_score,
            stopped_by=stopped_by,
            exit_code=exit_code,
            session_steps=session_steps,
            train_seconds=train_seconds,
        )

    def _progress_bar(self, progress: bool):
        from tqdm import tqdm

        budget = self.settings.time_budget * 60
        if budget:  # the bar counts the budget's seconds, so its ETA is the end of the budget
            return tqdm(total=round(budget), initial=min(round(self.elapsed), round(budget)),
                        disable=not progress, unit="s")  # fmt: skip
        return tqdm(
            total=self.settings.step_limit, initial=self.step, disable=not progress, unit="step"
        )

    def _validate(self, should_stop) -> Evaluation | None:
        """Evaluate the weights to use (the moving average when there is one)."""
        with self.average.swapped_in() if self.average is not None else nullcontext():
            evaluation = self.job.evaluate(self.step, should_stop)
        self.model.train()
        if evaluation is None:
            return None
        self.last_evaluation = evaluation
        if self.best_score is None or evaluation.score < self.best_score:
            self.best_score = evaluation.score
            self.best_checkpoint = f"{checkpoint.PREFIX}{self.step:08d}"
            self.best_summary = f"{evaluation.summary} at step {self.step}"
        return evaluation

    def _save_and_plot(self) -> None:
        if self.metrics_file is not None:
            self.metrics_file.flush()
        path = self.save()
        if not self.ranks.is_main:
            return
        if self.best_checkpoint == path.name and self.last_evaluation is not None:
            checkpoint.mark_best(
                self.run_dir, path, {**self.last_evaluation.document, "step": self.step}
            )
        try:
            write_loss_curve(
                self.run_dir / "metrics.csv", self.run_dir / "loss.png", self.job.loss_label
            )
        except OSError as error:  # a picture is not worth stopping a run for
            self.log(f"warning: could not draw {self.run_dir / 'loss.png'}: {error}")


def device_for(name: str, local_rank: int = 0) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is available here; use --device cpu")
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def quiet(*args) -> None:
    """The log of ranks other than 0."""


def _rounded(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _start_metrics(run_dir: Path, columns: list[str]) -> None:
    with (run_dir / "metrics.csv").open("w", newline="") as file:
        csv.writer(file).writerow(columns)


def _truncate_metrics(run_dir: Path, step: int) -> None:
    """Keep the metrics rows up to `step` (resuming from the checkpoint of that step)."""
    path = run_dir / "metrics.csv"
    rows, columns = [], ["step"]
    if path.exists():
        with path.open(newline="") as file:
            reader = csv.DictReader(file)
            rows = [r for r in reader if int(r["step"]) <= step]
            columns = reader.fieldnames or columns
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
