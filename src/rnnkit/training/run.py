"""A run directory: what is in it, and how `sample` and `eval` get a model out of it.

RUN/config.json        the training configuration (TrainConfig as JSON)
RUN/cell.json          for a cell of the user's own (--cell file.py:Class): the file's SHA-256
RUN/vocab.json         the vocabulary: the only one `sample` and `eval` use
RUN/metrics.csv        one row per step: step, train_loss, val_loss, lr, grad_norm, ...
RUN/loss.png           the loss curve
RUN/checkpoints/       step-NNNNNNNN/ directories (see checkpoint.py)
RUN/data/              the training text encoded as ids (a cache, safe to delete)
"""

import csv
import json
from pathlib import Path

import torch

from rnnkit.data.text import Vocabulary
from rnnkit.errors import UsageError
from rnnkit.models.charlm import CharLM
from rnnkit.training.cell_record import record_cell, run_cell
from rnnkit.training.checkpoint import (
    CheckpointError,
    complete_checkpoints,
    load_chosen,
)
from rnnkit.training.config import ARCHITECTURE_FIELDS, TrainConfig


def is_run(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "vocab.json").is_file()


def read_run(run_dir: Path) -> tuple[TrainConfig, Vocabulary]:
    if not run_dir.exists():
        raise UsageError(
            f"{run_dir}: no such run directory. Train one with `rnnkit train --out {run_dir}`"
        )
    if not is_run(run_dir):
        raise UsageError(
            f"{run_dir} is not a run directory (it has no config.json and vocab.json). "
            "Give the --out directory of `rnnkit train`"
        )
    try:
        config_path = run_dir / "config.json"
        config = TrainConfig.from_json(json.loads(config_path.read_text()), str(config_path))
        vocabulary = Vocabulary.from_json(json.loads((run_dir / "vocab.json").read_text()))
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{run_dir}: config.json or vocab.json is corrupted ({error})") from None
    return config, vocabulary


def build_model(config: TrainConfig, vocabulary: Vocabulary, run_dir: Path | None = None) -> CharLM:
    return CharLM(
        len(vocabulary),
        cell=run_cell(config.cell, run_dir),
        embedding_size=config.embedding_size,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        dropout=config.dropout,
        tie_weights=config.tie_weights,
        weight_dropout=config.weight_dropout,
        variational_dropout=config.variational_dropout,
    )


def load_trained_model(run_dir: Path, which: str = "best", warn=print):
    """(model in eval mode, config, vocabulary, checkpoint path) of a run.

    which: "best" (lowest validation loss) or "latest"; a bad checkpoint is skipped (with a
    warning) in favour of the newest good one.
    """
    config, vocabulary = read_run(run_dir)
    path, tensors, _ = load_chosen(run_dir, which, warn)
    model = build_model(config, vocabulary, run_dir)
    load_weights(model, tensors["model"], path)
    model.eval()
    return model, config, vocabulary, path


def validation_ids(run_dir: Path, config: TrainConfig, vocabulary: Vocabulary):
    """The ids of a run's validation split (memory-mapped), as training measured it."""
    from rnnkit.data.batches import contiguous_split
    from rnnkit.data.corpora import corpus_path
    from rnnkit.data.text import load_corpus

    source = corpus_path(config.data, run_dir / "data")
    corpus = load_corpus(source, vocabulary.encoding, run_dir / "data", vocabulary)
    start, end = contiguous_split(len(corpus.ids), config.val_fraction, config.test_fraction).val
    return corpus.ids[start:end]


def load_weights(model: torch.nn.Module, weights: dict, path: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = [
        f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in weights and weights[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if unexpected:
            parts.append("unexpected " + ", ".join(unexpected))
        if wrong:
            parts.append("shapes differ: " + "; ".join(wrong))
        raise CheckpointError(
            f"{path} does not fit the model described by config.json: " + "; ".join(parts)
        )
    model.load_state_dict(weights)


def prepare_run_dir(run_dir: Path, config: TrainConfig, resume: bool, ranks, log):
    """Check that `config` may start (or resume) the run in `run_dir`; create it if new.

    Returns the saved (config, vocabulary) when resuming, else None.
    """
    if not resume:
        # A run that was stopped before its first checkpoint has nothing to lose: it may be
        # started again in the same directory.
        if complete_checkpoints(run_dir):
            raise UsageError(
                f"{run_dir} already holds a training run; continue it with --resume "
                f"{run_dir}, or choose a new directory with --out"
            )
        ranks.barrier()  # every rank has looked before rank 0 creates anything
        if ranks.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            record_cell(run_dir, config.cell)
        ranks.barrier()
        return None
    saved_config, saved_vocabulary = read_run(run_dir)
    differences = _differences(saved_config, config, ARCHITECTURE_FIELDS)
    if differences:
        raise UsageError(
            f"cannot resume {run_dir} with a different architecture: {differences}. Resume "
            "without these flags, or start a new run with --out"
        )
    if (config.data or None) != (saved_config.data or None):
        bundled = "the bundled Tiny Shakespeare"
        raise UsageError(
            f"cannot resume {run_dir} on other data: it trained on "
            f"{saved_config.data or bundled}, not {config.data or bundled}"
        )
    changed = _differences(saved_config, config, TrainConfig.__dataclass_fields__)
    if changed:
        log(f"resuming with changed settings: {changed}")
    return saved_config, saved_vocabulary


def _differences(old: TrainConfig, new: TrainConfig, names) -> str:
    return "; ".join(
        f"{name} {getattr(old, name)!r} -> {getattr(new, name)!r}"
        for name in names
        if getattr(old, name) != getattr(new, name)
    )


def start_metrics(run_dir: Path, columns: list[str]) -> None:
    with (run_dir / "metrics.csv").open("w", newline="") as file:
        csv.writer(file).writerow(columns)


def truncate_metrics(run_dir: Path, step: int) -> None:
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
