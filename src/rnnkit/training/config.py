"""The language model's training configuration: one dataclass, the defaults in one place.

The command line is built from it (field ``hidden_size`` is flag ``--hidden-size``) and a TOML
file overrides it with the same keys: defaults (with a ``--time-budget``, those of
``BUDGET_DEFAULTS``) < ``--config FILE.toml`` < flags.
"""

import argparse
import dataclasses
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from rnnkit.errors import UsageError


def option(default, help: str, choices=None, minimum=None, maximum=None):
    metadata = {"help": help, "choices": choices, "minimum": minimum, "maximum": maximum}
    return field(default=default, metadata=metadata)


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
            eval_interval=500,
        ),
    ),
)
"""What `--time-budget` changes in the defaults. A fixed budget on a CPU trades model size
against steps, measured on the 2-core development machine (docs/results.md, "Defaults fitted
to the time budget" and "Shorter chunks, ..."): in 4.7 minutes one LSTM layer of 256 (~110 ms
a step, 2,317 steps) reached 1.513 nats/char on validation, one of 192 (3,555 steps) 1.527,
one of 384 (1,152 steps) 1.535 and one of 512 (564 steps) 1.693. Then, for the layer of 256:
a cosine decay to 0 instead of lr/10 1.506, and 64-character chunks (twice the steps) 1.500;
with shifted epochs too, these defaults reached 1.4968, 1.4998 and 1.4966 in three runs
(evaluating every 500 steps instead of 250 leaves ~10 s more for steps). Activation
regularisation (AR 2, TAR 1, as in AWD-LSTM) then gave 1.4672 and 1.4565 (seeds 1337 and 2)
despite slower steps (66-69 ms against 56-58) ("Activation regularisation at 4.7 minutes").

Above 10 minutes two layers of 512 pay off: with the same chunks, decay and shifted epochs,
1.4275 and 1.4169 in 30 minutes (two seeds, ~3,500 steps) against 1.4357 for the class
defaults' one layer (9,450 steps) and 1.4374 for that layer with 128-character chunks and a
decay to lr/10. Variational dropout (one mask per sequence, 7-10% cheaper steps) and an
evaluation every 500 steps then gave the two layers ~4,100 steps and 1.4047 and 1.4172 for the
same two seeds (docs/results.md, "Variational dropout ..."): cheaper steps, and no seed did
worse. Two layers of 640 (1.4256), three of 512, dropout 0.1, 0.15 or 0.25, and a moving
average of the weights (--ema-decay 0.999) did not do better ("A moving average of the
weights, ..."). AdamW's weight decay 0.1 on the weight matrices then did ("Weight decay at 30
minutes"): 1.3943 and 1.3946 for the same two seeds (1337, 2), and 0.3 gave 1.3934.
Without a budget the class defaults stand."""


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


@dataclass
class TrainConfig:
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
    cell: str = option("lstm", "recurrent cell", ("rnn", "lstm", "gru"))
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
    lr: float = option(3e-3, "peak learning rate (AdamW)", minimum=0.0)
    min_lr: float = option(3e-4, "learning rate at the end of the cosine decay", minimum=0.0)
    warmup_steps: int = option(100, "linear warm-up steps", minimum=0)
    weight_decay: float = option(0.0, "AdamW weight decay", minimum=0.0)
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
    ema_decay: float = option(
        0.0,
        "validate, keep the best of and sample from an exponential moving average of the "
        "weights with this decay per step, e.g. 0.999 (0: the raw weights)",
        minimum=0.0,
        maximum=0.99999,
    )
    clip_norm: float = option(
        1.0, "clip gradients to this global norm (0: no clipping)", minimum=0.0
    )
    nonfinite: str = option(
        "skip",
        "on a NaN/inf loss or gradient: skip the step, roll back to the last checkpoint with "
        "half the learning rate, or abort",
        ("skip", "rollback", "abort"),
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
    seed: int = option(1337, "random seed (weights, dropout)")
    device: str = option("auto", "where to train", ("auto", "cpu", "cuda"))
    threads: int = option(0, "CPU threads for torch (0: torch's default)", minimum=0)

    def validate(self) -> None:
        check_fields(self)
        if self.min_lr > self.lr:
            raise UsageError(
                f"--min-lr ({self.min_lr:g}) must not exceed --lr ({self.lr:g}); give a lower "
                "--min-lr with a low --lr"
            )
        if self.tie_weights and self.embedding_size != self.hidden_size:
            raise UsageError(
                "--tie-weights needs --embedding-size equal to --hidden-size "
                f"({self.hidden_size}), got {self.embedding_size}"
            )

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

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


DEFAULT_STEPS = 2000  # without a time budget
UNLIMITED_STEPS = 10**9  # with a time budget and no --max-steps: the budget decides

ARCHITECTURE_FIELDS = (
    "cell",
    "num_layers",
    "hidden_size",
    "embedding_size",
    "tie_weights",
    "encoding",
)
"""Fields a resumed run cannot change (they decide the shape of the weights or the vocabulary)."""


def check_fields(config) -> None:
    """Check every field of a config dataclass against its choices, minimum and maximum."""
    for spec in fields(config):
        value = getattr(config, spec.name)
        meta = spec.metadata
        flag = "--" + spec.name.replace("_", "-")
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{flag} must be a finite number, got {value}")
        if meta.get("choices") and value not in meta["choices"]:
            raise UsageError(f"{flag} must be one of {', '.join(meta['choices'])}, got {value!r}")
        if meta.get("minimum") is not None and value < meta["minimum"]:
            raise UsageError(f"{flag} must be at least {meta['minimum']}, got {value}")
        if meta.get("maximum") is not None and value > meta["maximum"]:
            raise UsageError(f"{flag} must be at most {meta['maximum']}, got {value}")


def add_arguments(
    parser: argparse.ArgumentParser,
    config_class=TrainConfig,
    names: tuple[str, ...] | None = None,
    defaults: dict | None = None,
) -> None:
    """One flag per field (or per field in `names`), with no default of its own (None = not
    given); `defaults` overrides the dataclass's defaults in the help text."""
    for spec in fields(config_class):
        if names is not None and spec.name not in names:
            continue
        flag = "--" + spec.name.replace("_", "-")
        help_text = spec.metadata["help"]
        default = (defaults or {}).get(spec.name, spec.default)
        if default is not None:
            help_text += f" (default: {default})"
        if spec.type is bool:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
            continue
        kind = spec.type if spec.type in (int, float) else str
        parser.add_argument(
            flag,
            type=kind,
            default=None,
            choices=spec.metadata.get("choices"),
            help=help_text,
            metavar=None if spec.metadata.get("choices") else spec.name.upper(),
        )


def build_config(args: argparse.Namespace, config_file: str | None) -> TrainConfig:
    """defaults (for the time budget) < the TOML file < flags given on the command line."""
    values = {}
    if config_file:
        values.update(read_toml(Path(config_file)))
    for spec in fields(TrainConfig):
        given = getattr(args, spec.name, None)
        if given is not None:
            values[spec.name] = given
    config = TrainConfig.for_budget(**values)
    config.validate()
    return config


def read_toml(path: Path) -> dict:
    if not path.is_file():
        raise UsageError(f"{path}: no such config file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{path} is not valid TOML: {error}") from None
    known = {f.name: f for f in fields(TrainConfig)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UsageError(
            f"{path}: unknown key(s) {', '.join(unknown)}; the keys are the flag names with "
            f"underscores ({', '.join(sorted(known))})"
        )
    for key, value in data.items():
        expected = known[key].type
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            data[key] = float(value)
        elif expected in (int, float, bool, str) and not isinstance(data[key], expected):
            raise UsageError(f"{path}: {key} must be a {expected.__name__}, got {value!r}")
    return data
