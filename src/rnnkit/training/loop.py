"""The training loop of the character model: truncated BPTT, clipping, schedule, checkpoints.

``train(config, out)`` is a plain function; the command line only parses and calls it. Every step:

    batch i (B, T)  ->  forward from the carried state  ->  loss  ->  backward  ->  check finite
                    ->  clip to the global norm  ->  AdamW step  ->  carry the state to batch i+1

Every ``eval_interval`` steps (and at the end) a full-pass validation and an atomic checkpoint;
with ``ema_decay`` both are of the moving average of the weights (averaging.py).
Everything that decides step i+1 is saved (weights, optimizer moments, step, the carried hidden
state, the dropout RNG, the time spent), so a resumed run continues exactly as the
uninterrupted one would have (bit for bit on CPU with the same torch and thread count).
"""

import csv
import json
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from rnnkit.data.batches import TrainingChunks, contiguous_split
from rnnkit.data.corpora import corpus_path
from rnnkit.data.text import load_corpus
from rnnkit.errors import UsageError
from rnnkit.models.charlm import count_parameters, detach_state, state_from_tensors, state_tensors
from rnnkit.training import checkpoint, distributed
from rnnkit.training.activation_penalty import activation_penalty
from rnnkit.training.averaging import WeightAverage
from rnnkit.training.config import TrainConfig
from rnnkit.training.evaluate import Evaluation, evaluate
from rnnkit.training.optimizer_state import optimizer_from_plain, optimizer_to_plain
from rnnkit.training.plot import write_loss_curve
from rnnkit.training.run import (
    build_model,
    load_weights,
    prepare_run_dir,
    start_metrics,
    truncate_metrics,
)
from rnnkit.training.schedule import learning_rate
from rnnkit.training.signals import stop_on_signals

MAX_SKIPPED_IN_A_ROW = 10  # non-finite steps in a row before a run gives up (the tasks' too)
MAX_ROLLBACKS = 5


class TrainingAborted(UsageError):
    """Training stopped on a non-finite loss or gradient (policy `abort`, or too many skips)."""

    exit_code = 3


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    val_loss: float | None
    best_val_loss: float | None
    stopped_by: str  # "max_steps", "time_budget", "SIGINT" or "SIGTERM"
    exit_code: int  # 0, or 130 / 143 after a signal
    train_characters_per_second: float


def train(config: TrainConfig, out: Path, resume: bool = False, log=print, progress=None):
    """Train (or resume) the run in `out`; returns a TrainResult.

    Launched by torchrun with several processes, this trains data-parallel (distributed.py).
    """
    config.validate()
    ranks = distributed.start(config.device)
    trainer = None
    try:
        trainer = Trainer(config, Path(out), resume, log if ranks.is_main else _quiet, ranks)
        show = sys.stderr.isatty() if progress is None else progress
        return trainer.run(progress=show and ranks.is_main)
    finally:
        del trainer  # its DDP reducer holds the process group: free it first (distributed.stop)
        distributed.stop()


class Trainer:
    def __init__(self, config: TrainConfig, run_dir: Path, resume: bool, log, ranks=None) -> None:
        self.log = log
        self.run_dir = run_dir
        self.ranks = ranks = ranks or distributed.Ranks()
        if config.threads:
            torch.set_num_threads(config.threads)
        self.device = _device(config.device, ranks.local_rank)
        saved = prepare_run_dir(run_dir, config, resume, ranks, log)
        self.config = config
        torch.manual_seed(config.seed + ranks.rank)  # the weights come from rank 0 (DDP)

        vocabulary = saved[1] if saved else None
        if not ranks.is_main:
            ranks.barrier()  # rank 0 encodes the text; the others then read its cache
        data_path = corpus_path(config.data, run_dir / "data")
        corpus = load_corpus(data_path, config.encoding, run_dir / "data", vocabulary)
        if ranks.is_main:
            ranks.barrier()
        self.vocabulary = corpus.vocabulary
        split = contiguous_split(len(corpus.ids), config.val_fraction, config.test_fraction)
        self.train_ids = corpus.ids[split.train[0] : split.train[1]]
        self.val_ids = corpus.ids[split.val[0] : split.val[1]]
        if config.eval_chars:
            self.val_ids = self.val_ids[: config.eval_chars + 1]
        self.rows = ranks.rows(config.batch_size)
        self.chunks = TrainingChunks(
            self.train_ids,
            config.batch_size,
            config.seq_len,
            rows=self.rows,
            shift=config.shift_epochs,
            seed=config.seed,
        )

        self.model = build_model(config, self.vocabulary).to(self.device)
        self.forward_model = self.model
        if ranks.active:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward_model = DistributedDataParallel(self.model, device_ids=device_ids)
        matrices = [p for n, p in self.model.named_parameters() if p.dim() >= 2]
        others = [p for n, p in self.model.named_parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [
                {"params": matrices, "weight_decay": config.weight_decay},
                {"params": others, "weight_decay": 0.0},
            ],
            lr=config.lr,
            betas=(0.9, 0.99),
        )
        # What validation, the best checkpoint and `rnnkit sample` use (averaging.py); None: the
        # raw weights.
        self.average = WeightAverage(self.model, config.ema_decay) if config.ema_decay else None
        self.step = 0
        self.lr_scale = 1.0
        self.elapsed = 0.0  # wall-clock seconds of this run so far, over all its sessions
        self.best_val: float | None = None
        self.best_checkpoint: str | None = None
        self.state = None  # the hidden state carried from one chunk to the next
        self.last_checkpoint: Path | None = None
        self.metrics_file = None  # open while run() runs, on rank 0 only
        if resume:
            self._restore(checkpoint.load_latest_good(run_dir, warn=log))
        elif ranks.is_main:
            (run_dir / "vocab.json").write_text(json.dumps(self.vocabulary.to_json()))
            start_metrics(run_dir)
        if ranks.is_main:
            (run_dir / "config.json").write_text(json.dumps(config.to_json(), indent=1))
        ranks.barrier()

    # -- checkpoints --------------------------------------------------------------------------

    def save(self) -> Path:
        """Write a checkpoint (rank 0; every rank takes part in gathering the carried state)."""
        broken = [n for n, p in self.model.named_parameters() if not torch.isfinite(p).all()]
        if broken:  # never let a broken model displace a good checkpoint
            raise TrainingAborted(
                f"not saving step {self.step}: non-finite weights in {', '.join(broken)}; the "
                f"last checkpoint {self.last_checkpoint} is intact. Lower --lr and resume"
            )
        # The whole batch's carried state and every rank's dropout RNG, gathered in rank order.
        carried = {
            k: self.ranks.gather_rows(v, dim=1) for k, v in state_tensors(self.state).items()
        }
        rng = self.ranks.gather_rows(torch.get_rng_state().unsqueeze(0), dim=0)  # (ranks, ·)
        trainer_tensors = {"rng.torch": rng, **carried}
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
            "best_val_loss": self.best_val,
            "best_checkpoint": self.best_checkpoint,
            "threads": torch.get_num_threads(),
            "world_size": self.ranks.world_size,
            "averaged_steps": self.average.steps if self.average is not None else 0,
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
            tensors={
                **weights,
                "optimizer": optimizer_tensors,
                "trainer": trainer_tensors,
            },
            documents={
                "optimizer": optimizer_document,
                "trainer": trainer_document,
                "config": self.config.to_json(),
            },
        )
        best = self.run_dir / "checkpoints" / self.best_checkpoint if self.best_checkpoint else None
        checkpoint.rotate(self.run_dir, self.config.keep_checkpoints, best)
        return path

    def _restore(self, found) -> None:
        path, tensors, documents = found
        averaged = "training_weights" in tensors
        load_weights(self.model, tensors["training_weights" if averaged else "model"], path)
        optimizer_from_plain(self.optimizer, tensors["optimizer"], documents["optimizer"])
        trainer = documents["trainer"]
        self.step = trainer["step"]
        self.lr_scale = trainer["lr_scale"]
        self.elapsed = trainer["elapsed_seconds"]
        self.best_val = trainer["best_val_loss"]
        self.best_checkpoint = trainer["best_checkpoint"]
        if self.average is not None:  # the saved average, or (none saved) a new one from here
            self.average = WeightAverage(self.model, self.config.ema_decay)
            if averaged:
                self.average.load_state_dict(tensors["model"], trainer["averaged_steps"])
        saved_ranks = trainer.get("world_size", 1)
        if saved_ranks != self.ranks.world_size:
            raise UsageError(
                f"{path} was saved by {saved_ranks} process(es); resume it with the same number "
                f"(torchrun --nproc_per_node={saved_ranks}) to continue exactly"
            )
        rank = self.ranks.rank
        torch.set_rng_state(tensors["trainer"]["rng.torch"][rank])
        if "rng.cuda" in tensors["trainer"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["trainer"]["rng.cuda"][rank], self.device)
        state = state_from_tensors(tensors["trainer"])  # the whole batch's; keep our rows
        self.state = None if state is None else _rows(_to(state, self.device), self.rows)
        self.last_checkpoint = path
        if self.ranks.is_main:  # later rows will be written again
            truncate_metrics(self.run_dir, self.step)
        self.log(f"resumed from {path} (step {self.step})")

    # -- one step -----------------------------------------------------------------------------

    def train_step(self) -> tuple[float, float] | None:
        """One optimizer step on batch `self.step`; None when it was skipped (non-finite)."""
        if self.chunks.starts_epoch(self.step):
            self.state = None  # the streams start again from their beginning
        inputs, targets = (t.to(self.device) for t in self.chunks[self.step])
        # The BPTT boundary: the state carried in from the previous chunk keeps its value but
        # not its history, so backward stops here instead of running back to step 0.
        carried = detach_state(self.state)
        lr = self.lr_scale * learning_rate(
            self.step, self.progress(), self.config.lr, self.config.min_lr, self.config.warmup
        )
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        # logits (B, T, V); output, dropped (B, T, H): the last layer's, for AR/TAR
        logits, state, output, dropped = self.forward_model(inputs, carried, with_outputs=True)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        penalty = activation_penalty(
            output, dropped, self.config.activation_reg, self.config.temporal_activation_reg
        )
        objective = loss + penalty  # what backward minimises; the log shows the cross-entropy
        self.optimizer.zero_grad(set_to_none=True)
        if self.ranks.any(not torch.isfinite(objective)):
            return self._non_finite("loss", self.ranks.mean(objective.item()))
        objective.backward()
        parameters = [p for p in self.model.parameters() if p.grad is not None]
        # Check before clipping: clipping a NaN gradient would spread NaN into every gradient.
        norm = torch.nn.utils.get_total_norm([p.grad for p in parameters])
        if not torch.isfinite(norm):
            return self._non_finite("gradient norm", norm.item())
        if self.config.clip_norm > 0:
            torch.nn.utils.clip_grads_with_norm_(parameters, self.config.clip_norm, norm)
        self.optimizer.step()
        if self.average is not None:
            self.average.update()
        self.state = state
        self.skipped_in_a_row = 0
        return self.ranks.mean(loss.item()), norm.item()

    def progress(self) -> float:
        """How far through the run we are, 0 to 1: by time with a time budget, else by steps.

        With several processes the time is rank 0's, so every rank uses the same rate.
        """
        if self.config.time_budget:
            return self.ranks.from_main(self.elapsed) / (60 * self.config.time_budget)
        return self.step / self.config.step_limit

    def _non_finite(self, what: str, value: float):
        policy = self.config.nonfinite
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
        self.skipped_in_a_row = getattr(self, "skipped_in_a_row", 0) + 1
        if self.skipped_in_a_row > MAX_SKIPPED_IN_A_ROW:
            raise TrainingAborted(
                f"{where}, {self.skipped_in_a_row} steps in a row; {kept}. Lower --lr"
            )
        self.log(f"{where}: step skipped (weights unchanged)")
        self.step += 1
        return None

    # -- the loop -----------------------------------------------------------------------------

    def run(self, progress: bool) -> TrainResult:
        from tqdm import tqdm

        config = self.config
        self.log(
            f"training a {config.num_layers}-layer {config.cell.upper()} of {config.hidden_size} "
            f"({count_parameters(self.model):,} parameters) on {len(self.train_ids):,} "
            f"characters, vocabulary {len(self.vocabulary)}, into {self.run_dir}"
        )
        if config.warmup < config.warmup_steps:
            self.log(
                f"warm-up: {config.warmup} steps instead of --warmup-steps "
                f"{config.warmup_steps}: at most a tenth of this run's {config.step_limit} steps, "
                "so that it reaches its peak learning rate"
            )
        budget = config.time_budget * 60
        stopped_by, val_loss, session_steps, train_seconds = "max_steps", None, 0, 0.0
        if budget:  # the bar counts the budget's seconds, so its ETA is the end of the budget
            bar = tqdm(total=round(budget), initial=min(round(self.elapsed), round(budget)),
                       disable=not progress, unit="s")  # fmt: skip
        else:
            bar = tqdm(
                total=config.step_limit, initial=self.step, disable=not progress, unit="step"
            )
        if self.ranks.is_main:
            self.metrics_file = (self.run_dir / "metrics.csv").open("a", newline="")
            metrics = csv.writer(self.metrics_file)
        announce = lambda name: self.log(f"\n{name}: stopping after this step (again to abort)")  # noqa: E731
        with stop_on_signals(announce) as stop:
            try:
                while self.step < config.step_limit:
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
                    finishing = self.step >= config.step_limit or out_of_time or stopping
                    val = None
                    if self.step % config.eval_interval == 0 or (finishing and not stopping):
                        val = self._validate(should_stop=lambda: bool(stop))
                        val_loss = val if val is not None else val_loss
                    lr = self.optimizer.param_groups[0]["lr"]
                    if self.ranks.is_main:
                        metrics.writerow(
                            [self.step, f"{loss:.6f}", "" if val is None else f"{val:.6f}",
                             f"{lr:.6g}", f"{norm:.4f}", f"{1000 * seconds:.1f}"]
                        )  # fmt: skip
                    bar.set_postfix(step=self.step, loss=f"{loss:.3f}", val=_rounded(val_loss))
                    if not progress and (self.step % config.log_interval == 0 or val is not None):
                        self.log(
                            f"step {self.step} | loss {loss:.4f} | val {_rounded(val)} | "
                            f"lr {lr:.2e} | norm {norm:.2f} | {1000 * seconds:.1f} ms/step"
                        )
                    if val is not None or finishing:
                        self._save_and_plot()
                    self.elapsed += time.perf_counter() - started  # the step, eval and saving
                    bar.update(min(round(self.elapsed), round(budget)) - bar.n if budget else 1)
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
            self.log(
                f"done: {self.step} steps, validation {_rounded(val_loss)} nats/char (best "
                f"{_rounded(self.best_val)}); checkpoints in {self.run_dir / 'checkpoints'}"
            )
        characters = session_steps * config.batch_size * config.seq_len
        return TrainResult(
            run_dir=self.run_dir,
            steps=self.step,
            val_loss=val_loss,
            best_val_loss=self.best_val,
            stopped_by=stopped_by,
            exit_code=exit_code,
            train_characters_per_second=characters / train_seconds if train_seconds else 0.0,
        )

    def _validate(self, should_stop) -> float | None:
        with self.average.swapped_in() if self.average is not None else nullcontext():
            evaluation = self.score(should_stop)
        if evaluation is None:
            return None
        if self.best_val is None or evaluation.loss < self.best_val:
            self.best_val = evaluation.loss
            self.best_checkpoint = f"{checkpoint.PREFIX}{self.step:08d}"
        return evaluation.loss

    def score(self, should_stop=lambda: False) -> Evaluation | None:
        """A full pass over the validation text with the model's current weights."""
        return evaluate(self.model, self.val_ids, 64, self.config.seq_len, self.device, should_stop)

    def _save_and_plot(self) -> None:
        if self.metrics_file is not None:
            self.metrics_file.flush()
        path = self.save()
        if not self.ranks.is_main:
            return
        if self.best_checkpoint == path.name:
            checkpoint.mark_best(self.run_dir, path, {"val_loss": self.best_val, "step": self.step})
        try:
            write_loss_curve(self.run_dir / "metrics.csv", self.run_dir / "loss.png")
        except OSError as error:  # a picture is not worth stopping a run for
            self.log(f"warning: could not draw {self.run_dir / 'loss.png'}: {error}")


def _device(name: str, local_rank: int = 0) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is available here; use --device cpu")
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _rows(state, rows: slice):
    """This rank's rows of a carried state (L, B, H)."""
    if isinstance(state, tuple):
        return tuple(s[:, rows] for s in state)
    return state[:, rows]


def _quiet(*args) -> None:
    pass


def _rounded(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _to(state, device):
    if isinstance(state, tuple):
        return tuple(s.to(device) for s in state)
    return state.to(device)
