"""The task models' configuration: one dataclass for every task; each task picks the fields
that apply to it (only those become its flags) and its own defaults (tasks/*.py)."""

import dataclasses
from dataclasses import dataclass

from rnnkit.cell_names import CELL_HELP, checked_cell_spec
from rnnkit.config_fields import check_fields, from_document, option
from rnnkit.errors import UsageError


@dataclass
class TaskConfig:
    # model
    cell: str = option("lstm", CELL_HELP)
    embedding_size: int = option(64, "size of the token embedding", minimum=1)
    hidden_size: int = option(128, "hidden units per direction", minimum=1)
    num_layers: int = option(1, "recurrent layers of the encoder", minimum=1)
    bidirectional: bool = option(True, "read the input in both directions")
    dropout: float = option(0.3, "dropout on embeddings and outputs", minimum=0.0, maximum=0.9)
    attention: str = option(
        "additive",
        "decoder attention: additive (Bahdanau), multiplicative (Luong), or none",
        ("additive", "multiplicative", "none"),
    )
    attention_size: int = option(128, "hidden size of additive attention", minimum=1)
    # training
    teacher_forcing: float = option(
        1.0,
        "probability that the decoder is fed the reference token (at the end of training when "
        "scheduled)",
        minimum=0.0,
        maximum=1.0,
    )
    scheduled_sampling: bool = option(
        False, "lower the teacher-forcing ratio linearly from 1 to --teacher-forcing"
    )
    batch_size: int = option(32, "examples per batch", minimum=1)
    lr: float = option(3e-3, "peak learning rate (AdamW, warm-up then cosine)", minimum=0.0)
    min_lr: float = option(1.5e-4, "learning rate at the end of the cosine decay", minimum=0.0)
    warmup_steps: int = option(
        50, "linear warm-up steps (at most a tenth of the run's steps)", minimum=0
    )
    weight_decay: float = option(
        0.0, "AdamW weight decay (on weight matrices; never on biases)", minimum=0.0
    )
    clip_norm: float = option(1.0, "clip gradients to this global norm (0: none)", minimum=0.0)
    max_epochs: int = option(20, "passes over the training set", minimum=1)
    max_steps: int = option(
        0,
        "stop after this many steps (0: --max-epochs decides); the schedule ends there",
        minimum=0,
    )
    time_budget: float = option(
        0.0, "stop after this many minutes (0: no limit); the schedule is fitted to it", minimum=0.0
    )
    ema_decay: float = option(
        0.0,
        "evaluate, keep the best of and predict with an exponential moving average of the "
        "weights with this decay per step, e.g. 0.99 (0: the raw weights)",
        minimum=0.0,
        maximum=0.99999,
    )
    nonfinite: str = option(
        "skip",
        "on a NaN/inf loss or gradient: skip the step, roll back to the last checkpoint with "
        "half the learning rate, or abort",
        ("skip", "rollback", "abort"),
    )
    min_count: int = option(1, "words seen fewer times in training become <unk>", minimum=1)
    train_examples: int = option(
        0, "use only the first N training examples (0: all); for quick trials", minimum=0
    )
    eval_examples: int = option(
        0, "score only the first N dev and test examples (0: all); for quick trials", minimum=0
    )
    pretrained: str | None = option(
        None,
        "start the word vectors and the encoder from this `rnnkit task english train` run "
        "(its vocabulary and best checkpoint; the sizes and cell must match it)",
    )
    lexicon: bool = option(
        False,
        "give the encoder each word's sentiment valence from VADER's lexicon beside its word "
        "vector (sentiment only)",
    )
    pooling: str = option(
        "final",
        "what the classifier reads from its encoder: the final states (final), or those beside "
        "the max and the mean of its outputs over the sentence (concat) (sentiment only)",
        ("final", "concat"),
    )
    # decoding
    beam_width: int = option(1, "beam width for evaluation and prediction (1: greedy)", minimum=1)
    length_penalty: float = option(
        1.0, "beam search ranks by log p / length**P (0: no length normalisation)", minimum=0.0
    )
    # bookkeeping
    seed: int = option(1234, "random seed (split of generated data, weights, dropout, batches)")
    device: str = option("auto", "where to train (auto: a CUDA GPU when there is one)",
                         ("auto", "cpu", "cuda"))  # fmt: skip
    threads: int = option(0, "CPU threads for torch (0: torch's default)", minimum=0)

    def validate(self) -> None:
        check_fields(self)
        self.cell = checked_cell_spec(self.cell)
        if self.min_lr > self.lr:
            raise UsageError(
                f"--min-lr ({self.min_lr:g}) must not exceed --lr ({self.lr:g}); give a lower "
                "--min-lr with a low --lr"
            )

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict, where: str = "task.json") -> "TaskConfig":
        return from_document(cls, data, where)


COMMON_FIELDS = (
    "batch_size",
    "lr",
    "min_lr",
    "warmup_steps",
    "weight_decay",
    "clip_norm",
    "max_epochs",
    "max_steps",
    "time_budget",
    "ema_decay",
    "nonfinite",
    "train_examples",
    "eval_examples",
    "seed",
    "device",
    "threads",
)
ENCODER_FIELDS = ("cell", "embedding_size", "hidden_size", "num_layers", "bidirectional", "dropout")
STRUCTURE_FIELDS = (
    "cell", "embedding_size", "hidden_size", "num_layers", "bidirectional", "attention",
    "attention_size", "min_count", "batch_size", "train_examples", "seed", "pretrained",
    "lexicon", "pooling",
)  # fmt: skip
"""What a resumed task run cannot change: its model, its vocabulary, or the batches it reads."""
DECODER_FIELDS = (
    "attention",
    "attention_size",
    "teacher_forcing",
    "scheduled_sampling",
    "beam_width",
    "length_penalty",
)
