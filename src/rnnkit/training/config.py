"""The language model's training configuration: one dataclass, the defaults in one place.

The command line is built from it (field ``hidden_size`` is flag ``--hidden-size``) and a TOML
file overrides it with the same keys: defaults (with a ``--time-budget``, those of
``BUDGET_DEFAULTS``) < ``--config FILE.toml`` < flags.
"""

import argparse
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

from rnnkit.cell_names import CELL_HELP
from rnnkit.config_fields import from_document, option, read_toml
from rnnkit.errors import UsageError
from rnnkit.training.settings import RunSettings

BUDGET_DEFAULTS: tuple[tuple[float, dict], ...] = (
    # (budgets up to this many minutes, the defaults that replace the class's)
    (
        10.0,
        dict(
            hidden_size=256,
            dropout=0.0,
            seq_len=64,
            shift_epochs=True,
            lr=5e-3,
            min_lr=0.0,
            warmup_steps=50,
            activation_reg=2.0,
            temporal_activation_reg=1.0,
            eval_interval=500,
        ),
    ),
    (
        math.inf,
        dict(
            num_layers=2,
            seq_len=64,
            shift_epochs=True,
            min_lr=0.0,
            variational_dropout=True,
            weight_decay=0.1,
            activation_reg=2.0,
            temporal_activation_reg=1.0,
            eval_interval=500,
        ),
    ),
)
"""What `--time-budget` changes in the defaults: a fixed budget on a CPU trades model size
against steps. What each budget reaches is in docs/results.md; the measurements that chose
these values are in docs/experiments/. Without a budget the class defaults stand."""


def budget_defaults(minutes: float) -> dict:
    """The defaults that differ from the class's for a run of `minutes` (0: no budget)."""
    if minutes <= 0:
        return {}
    for most, defaults in BUDGET_DEFAULTS:
        if minutes <= most:
            return dict(defaults)
    return {}


def as_flags(settings: dict) -> str:
    """{"hidden_size": 256, "lr": 0.005, "shift_epochs": True} ->
    "--hidden-size 256, --lr 0.005, --shift-epochs"."""
    return ", ".join(as_flag(name, value) for name, value in settings.items())


def as_flag(name: str, value) -> str:
    flag = name.replace("_", "-")
    if isinstance(value, bool):
        return f"--{flag}" if value else f"--no-{flag}"
    return f"--{flag} {value:g}"


def describe_budget_defaults() -> str:
    """BUDGET_DEFAULTS for --help: "up to 10 minutes: --hidden-size 256, ..."."""
    return "; ".join(
        f"{f'up to {most:g} minutes' if math.isfinite(most) else 'longer'}: {as_flags(defaults)}"
        for most, defaults in BUDGET_DEFAULTS
    )


ARCHITECTURE_FIELDS = (
    "cell",
    "num_layers",
    "hidden_size",
    "embedding_size",
    "tie_weights",
    "encoding",
)
"""Fields a resumed run cannot change (they decide the shape of the weights or the vocabulary)."""


@dataclass
class TrainConfig(RunSettings):
    """The character model's run; the settings every run has are in RunSettings."""

    structure_fields: ClassVar[tuple[str, ...]] = ARCHITECTURE_FIELDS  # and the data: run.py

    # data
    data: str | None = option(
        None,
        "text file to train on (default: the bundled Tiny Shakespeare; python-stdlib: the "
        "Python standard library's source)",
    )
    encoding: str = option(
        "utf-8", "read the text as UTF-8 characters or raw bytes", ("utf-8", "bytes")
    )
    val_fraction: float = option(
        0.1, "last part of the text held out for validation", minimum=0.0, maximum=0.5
    )
    test_fraction: float = option(
        0.0,
        "part after validation held out for `rnnkit eval --split test`",
        minimum=0.0,
        maximum=0.5,
    )
    # model
    cell: str = option("lstm", CELL_HELP)
    num_layers: int = option(1, "recurrent layers", minimum=1)
    hidden_size: int = option(512, "hidden units per layer", minimum=1)
    embedding_size: int = option(64, "size of the character embedding", minimum=1)
    dropout: float = option(
        0.2, "dropout on embeddings, between layers and before the head", minimum=0.0, maximum=0.9
    )
    weight_dropout: float = option(
        0.0,
        "dropout on the recurrent weights W_hh, one mask per chunk (AWD-LSTM's weight drop)",
        minimum=0.0,
        maximum=0.9,
    )
    variational_dropout: bool = option(
        False,
        "draw each dropout mask once per sequence and chunk and use it at every step "
        "(Gal & Ghahramani 2016), instead of a new mask at each step",
    )
    tie_weights: bool = option(
        False,
        "share the embedding matrix with the output head (needs embedding size = hidden size)",
    )
    # optimisation
    batch_size: int = option(32, "sequences per batch", minimum=1)
    seq_len: int = option(
        128, "truncated-BPTT length: steps per chunk before the gradient is cut", minimum=1
    )
    shift_epochs: bool = option(
        False,
        "start each epoch's streams at a new offset into the text, so the chunk borders and "
        "the batches differ from epoch to epoch",
    )
    max_steps: int = option(
        0,
        "training steps, the end of the schedule (0: 2000, or as many as --time-budget allows)",
        minimum=0,
    )
    time_budget: float = option(
        0.0,
        "stop after this many minutes (0: no limit); the schedule is fitted to it, and so are the "
        f"defaults of settings you do not give ({describe_budget_defaults()})",
        minimum=0.0,
    )
    activation_reg: float = option(
        0.0,
        "activation regularisation: add this times the mean square of the last layer's output "
        "(after dropout) to the training loss, e.g. 2 (AWD-LSTM's AR)",
        minimum=0.0,
    )
    temporal_activation_reg: float = option(
        0.0,
        "temporal activation regularisation: add this times the mean square of the change of "
        "the last layer's output from one character to the next, e.g. 1 (AWD-LSTM's TAR)",
        minimum=0.0,
    )
    # bookkeeping
    eval_chars: int = option(
        2_000_000,
        "validation during training scores the first N characters of the validation split "
        "(0: all of it); `rnnkit eval` always scores all",
        minimum=0,
    )
    eval_interval: int = option(
        250, "evaluate (full pass) and save a checkpoint every N steps", minimum=1
    )
    log_interval: int = option(
        50, "write a log line every N steps (when not on a terminal)", minimum=1
    )
    keep_checkpoints: int = option(
        2, "recent checkpoints to keep (the best one is always kept)", minimum=1
    )

    def validate(self) -> None:
        super().validate()
        if self.tie_weights and self.embedding_size != self.hidden_size:
            raise UsageError(
                "--tie-weights needs --embedding-size equal to --hidden-size "
                f"({self.hidden_size}), got {self.embedding_size}"
            )

    @property
    def warmup(self) -> int:
        """The warm-up this run uses: --warmup-steps, but at most a tenth of a run whose length
        is counted in steps, so that a short run reaches its peak learning rate (a run that a
        time budget alone ends is not counted in steps: its warm-up stays as given)."""
        counted = not self.time_budget or self.max_steps
        return self.warmup_for(self.step_limit if counted else None)

    @property
    def step_limit(self) -> int:
        """The most steps this run may take (max_steps, or its default)."""
        if self.max_steps:
            return self.max_steps
        return UNLIMITED_STEPS if self.time_budget else DEFAULT_STEPS

    @classmethod
    def for_budget(cls, **given) -> "TrainConfig":
        """The config with `given` fields set and the others at the defaults for its time
        budget (`budget_defaults`); without a budget, the class defaults."""
        return cls(**(budget_defaults(given.get("time_budget", 0.0)) | given))

    @classmethod
    def from_json(cls, data: dict, where: str = "config.json") -> "TrainConfig":
        return from_document(cls, data, where)


DEFAULT_STEPS = 2000  # without a time budget
UNLIMITED_STEPS = 10**9  # with a time budget and no --max-steps: the budget decides


def build_config(args: argparse.Namespace, config_file: str | None) -> TrainConfig:
    """defaults (for the time budget) < the TOML file < flags given on the command line."""
    values = {}
    if config_file:
        values.update(read_toml(Path(config_file), TrainConfig))
    for spec in fields(TrainConfig):
        given = getattr(args, spec.name, None)
        if given is not None:
            values[spec.name] = given
    config = TrainConfig.for_budget(**values)
    config.validate()
    return config
