"""Training the character model: its job for the trainer (trainer.py), and `train()`.

Every step:

    batch i (B, T)  ->  forward from the carried state  ->  loss (+ AR/TAR)  ->  the trainer's
                        step  ->  carry the state to batch i+1

Every ``eval_interval`` steps (and at the end) a full-pass validation and an atomic checkpoint;
with ``ema_decay`` both are of the moving average of the weights (averaging.py).
``train(config, out)`` is a plain function; the command line only parses and calls it.
"""

import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from rnnkit.data.batches import TrainingChunks
from rnnkit.models.charlm import count_parameters
from rnnkit.training.activation_penalty import activation_penalty
from rnnkit.training.config import TrainConfig
from rnnkit.training.data_sources import StreamBatches
from rnnkit.training.evaluate import evaluate
from rnnkit.training.launch import train_job
from rnnkit.training.run import build_model, prepare_run_dir, run_corpus
from rnnkit.training.trainer import Evaluation, Settings, device_for

EVALUATION_BATCH = 64  # rows of a validation batch: a pass over the text in as few calls as fit


def train(
    config: TrainConfig, out: Path, resume: bool = False, log=print, progress=None,
    budget_spent: float = 0.0,
):  # fmt: skip
    """Train (or resume) the run in `out`; returns a TrainResult. ``budget_spent``: seconds of
    the time budget already used (measuring the machine: training/budget.py).

    Launched by torchrun with several processes, this trains data-parallel (distributed.py).
    """
    config.validate()
    show = sys.stderr.isatty() if progress is None else progress
    return train_job(
        lambda log, ranks: LanguageModelJob(config, Path(out), resume, log, ranks, budget_spent),
        config.device, out, resume, log, show,
    )[1]  # fmt: skip


def objective_of(model, config: TrainConfig, inputs, targets, carried):
    """(what backward minimises: the loss and the AR/TAR penalty, the loss, the state to
    carry) of one training batch; the budget's probe (training/budget.py) times the same."""
    # logits (B, T, V); output, dropped (B, T, H): the last layer's, for AR/TAR
    logits, state, output, dropped = model(inputs, carried, with_outputs=True)
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    penalty = activation_penalty(
        output, dropped, config.activation_reg, config.temporal_activation_reg
    )
    return loss + penalty, loss, state


class LanguageModelJob:
    metric_columns = ()
    loss_label = "loss (nats per character)"

    def remaining_budget(self, spent: float) -> float:
        """Minutes of the time budget after ``spent`` seconds of measuring the machine; never
        down to 0, which would mean no budget at all; 0 without a budget."""
        if not self.config.time_budget:
            return 0.0
        return max(self.config.time_budget - spent / 60, 1e-4)

    def __init__(
        self, config: TrainConfig, run_dir: Path, resume: bool, log, ranks,
        budget_spent: float = 0.0,
    ) -> None:  # fmt: skip
        if config.threads:
            torch.set_num_threads(config.threads)
        self.config = config
        self.run_dir = run_dir
        self.device = device_for(config.device, ranks.local_rank)
        saved = prepare_run_dir(run_dir, config, resume, ranks, log)
        torch.manual_seed(config.seed + ranks.rank)  # the weights come from rank 0

        vocabulary = saved[1] if saved else None
        if not ranks.is_main:
            ranks.barrier()  # rank 0 encodes the text; the others then read its cache
        corpus, split = run_corpus(run_dir, config, vocabulary)
        if ranks.is_main:
            ranks.barrier()
        self.vocabulary = corpus.vocabulary
        self.train_ids = corpus.ids[split.train[0] : split.train[1]]
        self.val_ids = corpus.ids[split.val[0] : split.val[1]]
        if config.eval_chars:
            self.val_ids = self.val_ids[: config.eval_chars + 1]
        rows = ranks.rows(config.batch_size)
        chunks = TrainingChunks(
            self.train_ids,
            config.batch_size,
            config.seq_len,
            rows=rows,
            shift=config.shift_epochs,
            seed=config.seed,
        )
        self.data = StreamBatches(chunks, rows, self.device, ranks)
        self.model = build_model(config, self.vocabulary, run_dir).to(self.device)
        self.settings = Settings(
            lr=config.lr,
            min_lr=config.min_lr,
            warmup=config.warmup,
            weight_decay=config.weight_decay,
            betas=(0.9, 0.99),  # a shorter memory of the squared gradient than torch's 0.999
            clip_norm=config.clip_norm,
            nonfinite=config.nonfinite,
            ema_decay=config.ema_decay,
            time_budget=self.remaining_budget(budget_spent),
            step_limit=config.step_limit,
            keep_checkpoints=config.keep_checkpoints,
            log_interval=config.log_interval,
        )
        if ranks.is_main:
            if not resume:
                (run_dir / "vocab.json").write_text(json.dumps(self.vocabulary.to_json()))
            (run_dir / "config.json").write_text(json.dumps(config.to_json(), indent=1))

    def describe(self) -> str:
        config = self.config
        return (
            f"training a {config.num_layers}-layer {config.cell.upper()} of {config.hidden_size} "
            f"({count_parameters(self.model):,} parameters) on {len(self.train_ids):,} "
            f"characters, vocabulary {len(self.vocabulary)}, into {self.run_dir}"
        )

    def config_document(self) -> dict:
        return self.config.to_json()

    def objective(self, batch, step: int, progress: float):
        return objective_of(self.model, self.config, *batch)

    def evaluates_at(self, step: int) -> bool:
        return step % self.config.eval_interval == 0

    def evaluate(self, step: int, should_stop) -> Evaluation | None:
        """A full pass over the validation text (its first eval_chars characters)."""
        result = evaluate(
            self.model,
            self.val_ids,
            EVALUATION_BATCH,
            self.config.seq_len,
            self.device,
            should_stop,
        )
        if result is None:
            return None
        return Evaluation(
            score=result.loss,
            loss=result.loss,
            summary=f"validation {result.loss:.4f} nats/char",
            document={"val_loss": result.loss},
        )

    def row(self, step: int, evaluation: Evaluation | None) -> dict:
        return {}
