"""The task models' configuration: one dataclass for every task; each task picks the fields
that apply to it (only those become its flags) and its own defaults (tasks/*.py)."""

from dataclasses import dataclass
from typing import ClassVar

from rnnkit.cell_names import CELL_HELP
from rnnkit.config_fields import from_document, option
from rnnkit.training.settings import RunSettings


@dataclass
class TaskConfig(RunSettings):
    """Every task's run; the settings every run has are in RunSettings."""

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
    min_lr: float = option(1.5e-4, "learning rate at the end of the cosine decay", minimum=0.0)
    warmup_steps: int = option(
        50, "linear warm-up steps (at most a tenth of the run's steps)", minimum=0
    )
    max_epochs: int = option(20, "passes over the training set", minimum=1)
    max_steps: int = option(
        0,
        "stop after this many steps (0: --max-epochs decides); the schedule ends there",
        minimum=0,
    )
    time_budget: float = option(
        0.0, "stop after this many minutes (0: no limit); the schedule is fitted to it", minimum=0.0
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

    structure_fields: ClassVar[tuple[str, ...]] = (
        "cell", "embedding_size", "hidden_size", "num_layers", "bidirectional", "attention",
        "attention_size", "min_count", "batch_size", "train_examples", "seed", "pretrained",
        "lexicon", "pooling",
    )  # fmt: skip

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
DECODER_FIELDS = (
    "attention",
    "attention_size",
    "teacher_forcing",
    "scheduled_sampling",
    "beam_width",
    "length_penalty",
)
