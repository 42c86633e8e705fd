"""What a task is: its data, its model, its loss and metrics, its baseline, its predictions.

training.py trains any Task (through the one trainer), runner.py evaluates and predicts with
it; each task file fills in
the methods below and nothing else. Examples are whatever a task likes (a sentence and a label,
a pair of token lists, an image strip); batches are built by the task and only passed back to it.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import torch
from torch import Tensor, nn

from rnnkit.tasks.catalogue import CATALOGUE
from rnnkit.tasks.config import TaskConfig


@dataclass
class Splits:
    train: list
    dev: list
    test: list

    def sizes(self) -> str:
        return f"{len(self.train):,} train / {len(self.dev):,} dev / {len(self.test):,} test"


def asset(*parts: str) -> Path:
    """A file bundled in rnnkit/assets/."""
    return Path(str(files("rnnkit").joinpath("assets", *parts)))


def on_device(batch, device: torch.device):
    """`batch` with every tensor in it (in tuples and lists, at any depth) on `device`; what
    is not a tensor (the chosen examples a batch may carry) as it is."""
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, tuple | list):
        return type(batch)(on_device(part, device) for part in batch)
    return batch


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def shuffled(count: int, generator: torch.Generator | None) -> list[int]:
    """0..count-1 in a random order drawn from `generator`, or in order when it is None."""
    if generator is None:
        return list(range(count))
    return torch.randperm(count, generator=generator).tolist()


class Task:
    name: str = ""  # its key in catalogue.CATALOGUE (shape, summary, flags, defaults)
    metric: str = ""  # the main metric (higher is better): picks the best checkpoint

    @property
    def shape(self) -> str:
        return CATALOGUE[self.name].shape

    def config(self, **given) -> TaskConfig:
        """The task's defaults, overridden by the `given` values that are not None."""
        values = {**CATALOGUE[self.name].defaults}
        values.update({k: v for k, v in given.items() if v is not None})
        config = TaskConfig(**values)
        config.validate()
        return config

    # -- data ---------------------------------------------------------------------------------
    def load_splits(self, config: TaskConfig) -> Splits:
        raise NotImplementedError

    def vocabularies(self, train: list, config: TaskConfig) -> dict:
        """The vocabularies (TokenVocabulary) built from the training split only."""
        raise NotImplementedError

    def batches(
        self, examples: list, vocabularies: dict, batch_size: int, generator=None
    ) -> Iterator:
        """Batches of `examples`, shuffled by `generator` when given, else in order."""
        raise NotImplementedError

    def model_batches(self, model: nn.Module, examples: list, vocabularies: dict, size: int):
        """`batches` in order, on the device of `model` (for scoring and predicting)."""
        device = model_device(model)
        for batch in self.batches(examples, vocabularies, size):
            yield on_device(batch, device)

    def source_length(self, example) -> int:
        """The length the model's input limit applies to (tokens, characters or images)."""
        raise NotImplementedError

    # -- model --------------------------------------------------------------------------------
    def build_model(self, config: TaskConfig, vocabularies: dict) -> nn.Module:
        raise NotImplementedError

    def initialise(self, model: nn.Module, config: TaskConfig, log) -> None:
        """Before the first step of a new run: start `model` from elsewhere (e.g. pre-trained
        weights). Nothing by default."""

    def loss(
        self, model: nn.Module, batch, config: TaskConfig, teacher_forcing: float, generator
    ) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(
        self,
        model: nn.Module,
        examples: list,
        vocabularies: dict,
        config: TaskConfig,
        beam: bool = True,
    ) -> dict:
        """Metrics on `examples` (model in eval mode): at least "loss" and self.metric.
        ``beam``: decode with the configured beam (False: greedy, cheaper, for the dev split
        during training); a task without decoding ignores it."""
        raise NotImplementedError

    def baseline(self, splits: Splits, vocabularies: dict, config: TaskConfig) -> dict | None:
        """A simple model's metrics on the test split, computed by the same command (or None)."""
        return None

    # -- use ----------------------------------------------------------------------------------
    def parse(self, text: str, vocabularies: dict, limit: int):
        """One user input -> an example to predict on; a UsageError for empty, unknown-only or
        too long input."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, model: nn.Module, example, vocabularies: dict, config: TaskConfig) -> str:
        raise NotImplementedError
