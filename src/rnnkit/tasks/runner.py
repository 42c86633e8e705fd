"""Use a trained task run: read it, load its model, score it again, predict with it.

Training is in tasks/training.py; the run directory it writes is described there.
"""

import dataclasses
import json
from pathlib import Path

from rnnkit.data.tokens import TokenVocabulary
from rnnkit.errors import UsageError
from rnnkit.tasks.base import Task
from rnnkit.tasks.config import TaskConfig
from rnnkit.training import checkpoint
from rnnkit.training.cell_record import run_cell


def read_task_run(run_dir: Path, task: Task) -> tuple[TaskConfig, dict, int]:
    """(config, vocabularies, input limit) of a task run; clear errors for anything else."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(
            f"{run_dir}: no such run directory; train one with "
            f"`rnnkit task {task.name} train --out {run_dir}`"
        )
    document_path = run_dir / "task.json"
    if not document_path.is_file():
        kind = "a language-model run" if (run_dir / "vocab.json").is_file() else "not a task run"
        raise UsageError(
            f"{run_dir} is {kind} (it has no task.json); give the --out directory of "
            f"`rnnkit task {task.name} train`"
        )
    try:
        document = json.loads(document_path.read_text())
        saved_task = document["task"]
        config = TaskConfig.from_json(document["config"], str(document_path))
        if not isinstance(saved_task, str) or not isinstance(document["vocabularies"], dict):
            raise TypeError("task should be a string and vocabularies an object")
        vocabularies = {
            k: TokenVocabulary.from_json(v) for k, v in document["vocabularies"].items()
        }
        limit = document["input_limit"]
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise TypeError(f"input_limit should be an integer, got {type(limit).__name__}")
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{document_path} is corrupted ({error})") from None
    if saved_task != task.name:
        raise UsageError(
            f"{run_dir} holds a {saved_task} run, not {task.name}; use "
            f"`rnnkit task {saved_task} ...` with it"
        )
    return config, vocabularies, limit


def load_run(run_dir: Path, task: Task, which: str = "best", warn=print, **decoding):
    """(model in eval mode, checkpoint path, config, vocabularies, input limit) of a task run.

    `decoding` may override beam_width and length_penalty (None: the run's own setting)."""
    config, vocabularies, limit = read_task_run(run_dir, task)
    for name, value in decoding.items():
        if value is not None:
            setattr(config, name, value)
    config.validate()
    path, tensors, _ = checkpoint.load_chosen(Path(run_dir), which, warn)
    cell = run_cell(config.cell, Path(run_dir))  # a file's only as the run recorded it
    model = task.build_model(dataclasses.replace(config, cell=cell), vocabularies)
    checkpoint.load_weights(model, tensors["model"], path)
    model.eval()
    return model, path, config, vocabularies, limit


def evaluate_run(
    run_dir: Path,
    task: Task,
    split: str = "test",
    which: str = "best",
    examples: int | None = None,
    warn=print,
    **decoding,
) -> dict:
    """Score a trained run on `split` (its first `examples` only, when given) again; `decoding`
    may change beam_width and length_penalty."""
    model, path, config, vocabularies, _ = load_run(run_dir, task, which, warn, **decoding)
    splits = task.load_splits(config)
    chosen = {"train": splits.train, "dev": splits.dev, "test": splits.test}[split][:examples]
    return {"task": task.name, "checkpoint": path.name, "split": split,
            split: task.evaluate(model, chosen, vocabularies, config)}  # fmt: skip


def predict_run(run_dir: Path, task: Task, texts: list[str], which="best", warn=print, **decoding):
    """The task's prediction for each input text (a list of strings)."""
    model, _, config, vocabularies, limit = load_run(run_dir, task, which, warn, **decoding)
    examples = [task.parse(text, vocabularies, limit) for text in texts]
    return [task.predict(model, example, vocabularies, config) for example in examples]
