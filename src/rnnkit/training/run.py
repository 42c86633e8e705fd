"""A run directory: what is in it, and how `sample` and `eval` get a model out of it.

RUN/config.json        the training configuration (TrainConfig as JSON)
RUN/vocab.json         the vocabulary: the only one `sample` and `eval` use
RUN/metrics.csv        one row per step: step, train_loss, val_loss, lr, grad_norm, ...
RUN/loss.png           the loss curve
RUN/checkpoints/       step-NNNNNNNN/ directories (see checkpoint.py)
RUN/data/              the training text encoded as ids (a cache, safe to delete)
"""

import json
from pathlib import Path

import torch

from rnnkit.data.text import Vocabulary
from rnnkit.errors import UsageError
from rnnkit.models.charlm import CharLM
from rnnkit.training.checkpoint import CheckpointError, checkpoint_root, load_latest_good
from rnnkit.training.config import TrainConfig


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
        config = TrainConfig.from_json(json.loads((run_dir / "config.json").read_text()))
        vocabulary = Vocabulary.from_json(json.loads((run_dir / "vocab.json").read_text()))
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{run_dir}: config.json or vocab.json is corrupted ({error})") from None
    return config, vocabulary


def build_model(config: TrainConfig, vocabulary: Vocabulary) -> CharLM:
    return CharLM(
        len(vocabulary),
        cell=config.cell,
        embedding_size=config.embedding_size,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        dropout=config.dropout,
        tie_weights=config.tie_weights,
    )


def load_trained_model(run_dir: Path, which: str = "best", warn=print):
    """(model in eval mode, config, vocabulary, checkpoint path) of a run.

    which: "best" (lowest validation loss) or "latest"; a bad checkpoint is skipped (with a
    warning) in favour of the newest good one.
    """
    config, vocabulary = read_run(run_dir)
    prefer = None
    best_file = checkpoint_root(run_dir) / "best.json"
    if which == "best" and best_file.is_file():
        try:
            prefer = checkpoint_root(run_dir) / json.loads(best_file.read_text())["checkpoint"]
        except (ValueError, KeyError):
            warn(f"warning: {best_file} is corrupted; using the latest checkpoint")
    path, tensors, _ = load_latest_good(run_dir, prefer=prefer, warn=warn)
    model = build_model(config, vocabulary)
    load_weights(model, tensors["model"], path)
    model.eval()
    return model, config, vocabulary, path


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
