"""The runs `rnnkit explore` serves, each loaded once through the safe checkpoint loader.

A language-model run answers readings (rnnkit.inside.reading), selections and matches
(rnnkit.inside.span_match), stretches of its validation text and samples
(rnnkit.generation.sampling). A task run answers its task's output for an input, with the
attention weights where the model has them. Readings are cached (the page asks for one text's
units several times); everything here is safe to call from several threads at once.
"""

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnkit.errors import UsageError

MAX_TEXT = 10_000  # characters one request may read, sample or translate
VALIDATION_MATCH_CHARS = 20_000  # "match in the validation text" looks at its start
CACHED_READINGS = 4


@dataclass
class LanguageRun:
    name: str
    path: Path
    model: object
    config: object
    vocabulary: object
    checkpoint: Path
    _readings: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _validation: str | None = field(default=None, repr=False)
    _validation_values: np.ndarray | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def info(self) -> dict:
        layer = self.model.rnn
        parts = ["h", *layer.cell.states[1:], *layer.cell.gate_names]
        return {
            "name": self.name,
            "type": "language model",
            "cell": layer.kind,
            "layers": layer.num_layers,
            "hidden": layer.hidden_size,
            "parts": parts,
            "value": "c" if "c" in layer.cell.states else "h",
            "symbols": list(self.vocabulary.symbols),
            "checkpoint": self.checkpoint.name,
        }

    def read(self, text: str):
        """The reading of ``text`` (rnnkit.inside.reading.Reading), cached."""
        from rnnkit.inside.reading import read

        check_length(text)
        with self._lock:
            if text in self._readings:
                self._readings.move_to_end(text)
                return self._readings[text]
        reading = read(self.model, self.vocabulary, text)
        with self._lock:
            self._readings[text] = reading
            while len(self._readings) > CACHED_READINGS:
                self._readings.popitem(last=False)
        return reading

    def validation(self) -> str:
        """The start of the run's validation text (up to VALIDATION_MATCH_CHARS)."""
        from rnnkit.training.run import validation_ids

        if self.vocabulary.encoding != "utf-8":
            raise UsageError(
                "this run reads bytes (--encoding bytes); the explorer shows characters and "
                "needs a run trained on UTF-8 text"
            )
        with self._lock:
            if self._validation is None:
                ids = validation_ids(self.path, self.config, self.vocabulary)
                self._validation = self.vocabulary.decode(ids[:VALIDATION_MATCH_CHARS])
            return self._validation

    def stretch(self, start: int, length: int) -> dict:
        text = self.validation()
        if not 0 <= start < len(text):
            raise UsageError(
                f"start {start} is outside the validation text shown here (0-{len(text) - 1})"
            )
        length = max(1, min(length, MAX_TEXT))
        return {"text": text[start : start + length], "start": start, "total": len(text)}

    def validation_values(self) -> tuple[str, np.ndarray]:
        """(text, the ranking values (L, T, H)) of the start of the validation text."""
        from rnnkit.inside.activations import activations

        text = self.validation()
        with self._lock:
            cached = self._validation_values
        if cached is None:
            value = "cell" if "c" in self.model.rnn.cell.states else "hidden"
            cached = activations(self.model, self.vocabulary, text, value)  # float32
            with self._lock:
                self._validation_values = cached
        return text, cached


@dataclass
class TaskRun:
    name: str
    path: Path
    task: object
    model: object
    config: object
    vocabularies: dict
    limit: int
    checkpoint: Path

    def info(self) -> dict:
        from rnnkit.tasks.catalogue import ATTENTION_TASKS, CATALOGUE

        return {
            "name": self.name,
            "type": "task",
            "task": self.task.name,
            "attention": self.task.name in ATTENTION_TASKS and self.config.attention != "none",
            "example": CATALOGUE[self.task.name].example,
            "checkpoint": self.checkpoint.name,
        }

    def answer(self, text: str) -> dict:
        """The task's output for one input; with attention, the weights and their labels."""
        check_length(text)
        if not text.strip():
            raise UsageError("the input is empty: type an input for the task")
        example = self.task.parse(text, self.vocabularies, self.limit)
        translate = getattr(self.task, "translate", None)
        if translate is None:  # taggers and classifiers: the prediction only
            output = self.task.predict(self.model, example, self.vocabularies, self.config)
            return {"output": output, "weights": None}
        tokens, weights = translate(self.model, example, self.vocabularies, self.config)
        answer = {"output": self.task.show(tokens), "weights": None}
        if weights is not None:
            image = self.task.source_image(example)
            answer.update(
                weights=np.asarray(weights, dtype=float).round(4).tolist(),
                source=[str(s) for s in self.task.source_labels(example)],
                target=self.task.attention_rows(tokens, weights),
                image=None if image is None else np.asarray(image, dtype=float).round(3).tolist(),
            )
        return answer


def unit_value(state, part: str, layer: int, index: int) -> float:
    """What the explorer colours a sampled character by: unit `index` of `layer` in the state
    after it (states (layers, 1, H): h, or (h, c) for an LSTM); for c, tanh(c), the cell's
    contribution to h, which lies in [-1, 1] as h does."""
    h, c = state if isinstance(state, tuple) else (state, None)
    if part == "c":
        return float(np.tanh(float(c[layer, 0, index])))
    return float(h[layer, 0, index])


def check_length(text: str) -> None:
    if len(text) > MAX_TEXT:
        raise TextTooLong(
            f"the text has {len(text):,} characters; the explorer reads at most {MAX_TEXT:,} "
            "at a time: shorten it"
        )


class TextTooLong(UsageError):
    """A request's text is over MAX_TEXT (the API answers 413)."""


def load_runs(paths: list[Path], which: str = "best", warn=print) -> dict:
    """name -> LanguageRun or TaskRun, for every run directory (names made unique)."""
    from rnnkit.tasks import get_task
    from rnnkit.tasks.runner import load_run
    from rnnkit.training.run import load_trained_model

    runs: dict = {}
    for path in paths:
        path = Path(path)
        name = path.resolve().name or "run"
        while name in runs:
            name += "'"
        if (path / "task.json").is_file():
            try:
                task_name = json.loads((path / "task.json").read_text())["task"]
                task = get_task(task_name)
            except (ValueError, KeyError, TypeError) as error:
                raise UsageError(f"{path / 'task.json'} is corrupted ({error})") from None
            model, checkpoint, config, vocabularies, limit = load_run(path, task, which, warn)
            runs[name] = TaskRun(name, path, task, model, config, vocabularies, limit, checkpoint)
        else:
            model, config, vocabulary, checkpoint = load_trained_model(path, which, warn)
            runs[name] = LanguageRun(name, path, model, config, vocabulary, checkpoint)
    return runs
