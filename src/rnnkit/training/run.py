"""A run directory: what is in it, and how `sample` and `eval` get a model out of it.

RUN/config.json        the training configuration (TrainConfig as JSON)
RUN/cell.json          for a cell of the user's own (--cell file.py:Class): the file's SHA-256
RUN/vocab.json         the vocabulary: the only one `sample` and `eval` use
RUN/metrics.csv        one row per step: step, train_loss, val_loss, lr, grad_norm, ...
RUN/loss.png           the loss curve
RUN/checkpoints/       step-NNNNNNNN/ directories (see checkpoint.py)
RUN/data/              the training text encoded as ids (a cache, safe to delete)
"""

import json
from pathlib import Path

from rnnkit.data.text import Vocabulary
from rnnkit.errors import UsageError
from rnnkit.models.charlm import CharLM
from rnnkit.training.cell_record import record_cell, run_cell
from rnnkit.training.checkpoint import load_chosen, load_weights
from rnnkit.training.config import TrainConfig
from rnnkit.training.settings import refuse_started_run


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
    return model_of(config, len(vocabulary), run_cell(config.cell, run_dir))


def model_of(config: TrainConfig, vocabulary_size: int, cell) -> CharLM:
    """The character model a run of ``config`` trains (``cell``: a name or a Cell)."""
    return CharLM(
        vocabulary_size,
        cell=cell,
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


def run_corpus(run_dir: Path, config: TrainConfig, vocabulary: Vocabulary | None = None):
    """(the run's own text encoded as ids, its train / validation / test split) as training
    cut it: the one place the split is made. The ids are cached in RUN/data; vocabulary None
    builds it from the text (a new run)."""
    from rnnkit.data.batches import contiguous_split
    from rnnkit.data.corpora import corpus_path
    from rnnkit.data.text import load_corpus

    encoding = vocabulary.encoding if vocabulary is not None else config.encoding
    source = corpus_path(config.data, run_dir / "data")
    corpus = load_corpus(source, encoding, run_dir / "data", vocabulary)
    return corpus, contiguous_split(len(corpus.ids), config.val_fraction, config.test_fraction)


def validation_ids(run_dir: Path, config: TrainConfig, vocabulary: Vocabulary):
    """The ids of a run's validation split (memory-mapped), as training measured it."""
    corpus, split = run_corpus(run_dir, config, vocabulary)
    start, end = split.val
    return corpus.ids[start:end]


def prepare_run_dir(run_dir: Path, config: TrainConfig, resume: bool, ranks, log):
    """Check that `config` may start (or resume) the run in `run_dir`; create it if new.

    Returns the saved (config, vocabulary) when resuming, else None.
    """
    if not resume:
        refuse_started_run(run_dir, "training run")
        ranks.barrier()  # every rank has looked before rank 0 creates anything
        if ranks.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            record_cell(run_dir, config.cell)
        ranks.barrier()
        return None
    saved_config, saved_vocabulary = read_run(run_dir)
    if (config.data or None) != (saved_config.data or None):
        bundled = "the bundled Tiny Shakespeare"
        raise UsageError(
            f"cannot resume {run_dir} on other data: it trained on "
            f"{saved_config.data or bundled}, not {config.data or bundled}"
        )
    saved_config.resumed(run_dir, config.to_json(), log)  # a change of architecture: refused
    return saved_config, saved_vocabulary
