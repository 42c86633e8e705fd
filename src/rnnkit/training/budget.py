"""`--time-budget` fitted to the machine: measure how fast each candidate size trains here,
then choose the size whose measured loss curve is lowest at the steps it will get.

A run's validation loss after N steps depends on N, not on how fast the machine is (the
schedule is fitted to the run's length either way), so one sweep of step counts per size
(bench/budget_sweep.py; the curves in budget_curves.json, written by bench/budget_curves.py
from docs/experiments/) serves every machine. What a machine changes is N: the budget divided
by its time per step. A faster machine affords a larger model (a small one over-fits with
many steps: the 1x256 curve rises again after 4,000 steps on Tiny Shakespeare), a slower one a
smaller model; so a faster machine never gets a worse model from the same command.

    1. probe    a few training steps of each candidate shape (layers x hidden size) on the
                run's device and threads, with a synthetic batch of the run's shape (at most
                PROBE_SHARE of the budget, counted in it)
    2. steps    each candidate's affordable steps: (budget − probe) / its time per step, less
                the validation passes the run will make (one every eval_interval steps and
                one at the end; a pass costs the forward of every validation batch, taken as a
                third of a training step per batch of its size: backward is about twice the
                forward)
    3. choose   the lowest predicted loss: the curve of the corpus nearest in length,
                interpolated in log(steps), held at its last point beyond it (no
                extrapolation of gains that were never measured), among the candidates
                measured at that many steps (not before a curve's first point, nor past a
                recipe's HELD_UP_TO: both would promise what was never measured; where no
                candidate is, among those nearest to their curves)

The candidates are the sizes the sweep measured, each with the settings it was measured with.
A flag that sets the size (--hidden-size, --num-layers) skips the choice, and so does a budget
under a minute (measuring would take more than its share); any other flag still overrides the
chosen settings. The choice lands in the run's config.json, so --resume keeps it.
RNNKIT_BUDGET_STEP_SECONDS="1x256=0.06,1x512=0.17,2x512=0.4" replaces the probe by those times
(for tests and for trying the rule); a candidate not named takes the time of one of its shape.
"""

import functools
import itertools
import json
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

CURVES = Path(__file__).with_name("budget_curves.json")
PROBE_SHARE = 0.03  # of the budget, at most, for measuring
PROBE_AIM = 0.9 * PROBE_SHARE  # what the timed steps aim at: the rest of the share is for
# building each size's model and the steps that must run whatever the share (a warm-up and one)
SHORTEST_PROBED = 1.0  # minutes: below, a warm-up and two steps of each size cost more than
# the share, and the budget's fixed defaults stand (unless speeds are given)
CANDIDATES: dict[str, dict] = {  # the settings each size was measured with (the sweep's);
    # the rest of CANDIDATE_FIELDS at TrainConfig's class defaults, as the sweep ran them
    "1x256": dict(num_layers=1, hidden_size=256, dropout=0.0, lr=5e-3, warmup_steps=50),
    "1x512": dict(num_layers=1, hidden_size=512, dropout=0.25, lr=5e-3, warmup_steps=50),
    "1x512-d0.1": dict(num_layers=1, hidden_size=512, dropout=0.1, lr=5e-3, warmup_steps=50),
    "1x512-d0.05": dict(num_layers=1, hidden_size=512, dropout=0.05, lr=5e-3, warmup_steps=50),
    # the same recipes at a higher peak learning rate: ahead in runs of few steps, over-fit sooner
    "1x256-lr0.01": dict(num_layers=1, hidden_size=256, dropout=0.0, lr=1e-2, warmup_steps=50),
    "1x512-d0.05-lr0.01": dict(
        num_layers=1, hidden_size=512, dropout=0.05, lr=1e-2, warmup_steps=50
    ),
    "2x512": dict(num_layers=2, hidden_size=512, variational_dropout=True, weight_decay=0.1),
    "2x512-d0.1": dict(
        num_layers=2, hidden_size=512, dropout=0.1, variational_dropout=True, weight_decay=0.1
    ),
    # the 2x512 recipes at a higher peak learning rate (3e-3 above), for the few thousand
    # steps one thread affords them in half an hour
    "2x512-lr5e-3": dict(
        num_layers=2, hidden_size=512, lr=5e-3, variational_dropout=True, weight_decay=0.1
    ),
    "2x512-d0.1-lr5e-3": dict(
        num_layers=2,
        hidden_size=512,
        dropout=0.1,
        lr=5e-3,
        variational_dropout=True,
        weight_decay=0.1,
    ),
}
HELD_UP_TO: dict[str, int] = {  # steps beyond which a curve is not held at its last point:
    # these were swept to 4,000 steps only, and the same 2x512 at dropout 0.1 and the lower
    # learning rate turned between 4,000 and 8,000 (over-fitting, budget_curves.json), which
    # a higher learning rate does no later; held a quarter beyond their last point, no more
    "2x512-lr5e-3": 5000,
    "2x512-d0.1-lr5e-3": 5000,
}
CANDIDATE_FIELDS = ("num_layers", "hidden_size", "dropout", "lr", "warmup_steps",
                    "variational_dropout", "weight_decay")  # fmt: skip


def candidate_settings(size: str) -> dict:
    """Every field a candidate decides: its own settings, else the class default."""
    from dataclasses import fields

    from rnnkit.training.config import TrainConfig

    defaults = {f.name: f.default for f in fields(TrainConfig)}
    return {name: CANDIDATES[size].get(name, defaults[name]) for name in CANDIDATE_FIELDS}


SIZE_FIELDS = ("num_layers", "hidden_size")  # given on the command line: no choice to make


@dataclass
class Choice:
    size: str
    settings: dict
    step_seconds: dict[str, float]  # measured, per candidate
    steps: dict[str, int]  # affordable, per candidate
    predicted: dict[str, float]  # validation loss, per candidate with a curve
    corpus: str  # whose curves
    probe_seconds: float
    injected: bool = False  # the speeds came from RNNKIT_BUDGET_STEP_SECONDS
    outside: dict[str, float] = field(default_factory=dict)  # outside_measured, per candidate

    def describe(self) -> str:
        rows = ", ".join(
            f"{size} {1000 * self.step_seconds[size]:.0f} ms/step -> {self.steps[size]:,} steps"
            + self._prediction(size)
            for size in self.step_seconds
        )
        source = (
            "given by RNNKIT_BUDGET_STEP_SECONDS" if self.injected
            else f"measured in {self.probe_seconds:.1f} s"
        )  # fmt: skip
        return (
            f"{source}: {rows}; chose {self.size} (the lowest "
            f"loss the {self.corpus} sweep measured at its steps)"
        )

    def _prediction(self, size: str) -> str:
        if size not in self.predicted:
            return ""
        if self.outside.get(size, 0.0) > 0 and size != self.size:
            return " (not swept at that many steps)"
        return f" (~{self.predicted[size]:.2f})"


@functools.cache
def curves() -> dict:
    return json.loads(CURVES.read_text())["corpora"]


def predicted_loss(points: list[list[float]], steps: float) -> float:
    """The curve at ``steps``: linear in log(steps) between measured points; before the
    first, along the first segment; after the last, the last point (no gain assumed)."""
    if steps >= points[-1][0]:
        return points[-1][1]
    if len(points) == 1:
        return points[0][1]
    for (s0, l0), (s1, l1) in itertools.pairwise(points):
        if steps <= s1:
            share = (math.log(max(steps, 1)) - math.log(s0)) / (math.log(s1) - math.log(s0))
            return l0 + share * (l1 - l0)
    return points[-1][1]


def outside_measured(size: str, points: list[list[float]], steps: int) -> float:
    """How far ``steps`` lies outside what a candidate's curve was measured for, as a log
    ratio (0 inside): before its first point (there the first segment extended back would
    promise a recipe swept only at longer runs more than it gives) or past HELD_UP_TO, if it
    has a limit. The rule chooses among the candidates least outside: all those inside, or
    on a machine too slow for any curve, the ones nearest to theirs."""
    # rounded, so that recipes that share a shape and a first point tie (their predictions
    # then decide)
    first, last = points[0][0], HELD_UP_TO.get(size, math.inf)
    if steps < first:
        return round(math.log(first / max(steps, 1)), 6)
    if steps > last:
        return round(math.log(steps / last), 6)
    return 0.0


def nearest_corpus(characters: int) -> str:
    """The swept corpus closest in length (on a log scale) to the run's text."""
    return min(curves(), key=lambda c: abs(math.log(curves()[c]["characters"] / characters)))


@dataclass(frozen=True)
class Validation:
    """What the run's validation passes cost, in training steps of the same model."""

    interval: int  # a pass every this many steps (and one at the end)
    pass_steps: float  # one pass costs about this many training steps

    @classmethod
    def of(cls, config, characters: int) -> "Validation":
        from rnnkit.training.language_model import EVALUATION_BATCH

        validation_characters = characters * config.val_fraction
        if config.eval_chars:
            validation_characters = min(validation_characters, config.eval_chars)
        batches = math.ceil(validation_characters / (EVALUATION_BATCH * config.seq_len))
        # a forward of EVALUATION_BATCH rows against a training step's forward and backward
        # (three forwards) of batch_size rows
        return cls(config.eval_interval, batches * EVALUATION_BATCH / config.batch_size / 3)

    def steps(self, seconds_left: float, step_seconds: float) -> int:
        """Steps that fit beside their passes: n·step + (n/interval + 1)·pass ≤ seconds_left."""
        return max(0, int((seconds_left / step_seconds - self.pass_steps)
                          / (1 + self.pass_steps / self.interval)))  # fmt: skip


NO_VALIDATION = Validation(interval=1, pass_steps=0.0)


def choose(
    minutes: float,
    step_seconds: dict[str, float],
    characters: int,
    probe_seconds: float = 0.0,
    validation: Validation = NO_VALIDATION,
) -> Choice:
    """The candidate with the lowest predicted loss for this budget and these speeds."""
    corpus = nearest_corpus(characters)
    measured = curves()[corpus]["sizes"]
    step_seconds = every_candidate(step_seconds)
    usable = max(0.0, 60 * minutes - probe_seconds)
    steps = {size: validation.steps(usable, seconds) for size, seconds in step_seconds.items()}
    predicted = {
        size: predicted_loss(measured[size], max(n, 1))
        for size, n in steps.items()
        if size in measured
    }
    outside = {size: outside_measured(size, measured[size], steps[size]) for size in predicted}
    best = min(predicted, key=lambda size: (outside[size], predicted[size]))
    return Choice(best, candidate_settings(best), step_seconds, steps, predicted, corpus,
                  probe_seconds, outside=outside)  # fmt: skip


def injected_step_seconds() -> dict[str, float] | None:
    raw = os.environ.get("RNNKIT_BUDGET_STEP_SECONDS")
    if not raw:
        return None
    from rnnkit.errors import UsageError

    try:
        pairs = (item.split("=") for item in raw.split(","))
        speeds = {size.strip(): float(value) for size, value in pairs}
    except ValueError:
        speeds = {}
    if not speeds or not set(speeds) <= set(CANDIDATES) or min(speeds.values()) <= 0:
        raise UsageError(
            f"RNNKIT_BUDGET_STEP_SECONDS={raw!r}: give seconds per step (above 0) by candidate, "
            f"e.g. 1x256=0.06,1x512=0.17,2x512=0.4 (candidates: {', '.join(CANDIDATES)}), "
            "or unset it to measure this machine"
        )
    return speeds


def model_shape(size: str) -> tuple[int, int]:
    """(layers, hidden size) of a candidate: what its speed depends on. Candidates of one
    shape differ only in regularisation (dropout, weight decay), which costs next to nothing
    beside the products, or in learning rate, which costs nothing, so one measurement serves
    them all."""
    settings = candidate_settings(size)
    return settings["num_layers"], settings["hidden_size"]


def every_candidate(step_seconds: dict[str, float]) -> dict[str, float]:
    """The speeds given for some candidates, extended to every candidate of a shape given."""
    by_shape = {model_shape(size): seconds for size, seconds in step_seconds.items()}
    extended = {size: by_shape[model_shape(size)] for size in CANDIDATES
                if model_shape(size) in by_shape}  # fmt: skip
    return extended | step_seconds


def probe(config, vocabulary_size: int, device: torch.device, seconds: float) -> dict[str, float]:
    """Seconds per training step here of one candidate of each model shape: the run's model
    at that shape and the candidate's dropout, and the run's step on a random batch of the
    run's shape (its loss with the AR/TAR penalty, the checks for a non-finite loss and
    gradient, the gradient's norm and clipping, AdamW); the median of the steps after a
    warm-up one, within ``seconds`` in all (a shape that cannot fit a warm-up and one timed
    step in its share still gets them: the only overshoot). A shape stops before a step that
    would end past its share."""
    from dataclasses import replace

    from rnnkit.training.run import model_of

    generator = torch.Generator().manual_seed(0)
    shape = (config.batch_size, config.seq_len + 1)
    ids = torch.randint(vocabulary_size, shape, generator=generator).to(device)
    inputs, targets = ids[:, :-1], ids[:, 1:]
    deadline = time.perf_counter() + seconds
    measured = {}
    shapes = list({model_shape(size): size for size in CANDIDATES}.values())  # one of each
    for left, size in zip(range(len(shapes), 0, -1), shapes, strict=True):
        # this shape's share of what is left, model building and warm-up included
        until = time.perf_counter() + max(0.0, deadline - time.perf_counter()) / left
        candidate = replace(config, **candidate_settings(size))
        model = model_of(candidate, vocabulary_size, config.cell).to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        times: list[float] = []
        for k in range(50):
            begin = time.perf_counter()
            _timed_step(model, optimizer, candidate, inputs, targets)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if k > 0:  # the first step builds and warms up
                times.append(time.perf_counter() - begin)
            if times and not another_step_fits(time.perf_counter(), until, times[-1]):
                break
        measured[size] = statistics.median(times)
    return measured


def _timed_step(model, optimizer, config, inputs, targets) -> None:
    """What Trainer.train_step does with a batch, in the same order (one process)."""
    from rnnkit.training.language_model import objective_of

    objective, loss, _ = objective_of(model, config, inputs, targets, None)
    optimizer.zero_grad(set_to_none=True)
    torch.isfinite(objective).item()
    objective.backward()
    parameters = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.get_total_norm([p.grad for p in parameters])
    torch.isfinite(norm).item()
    if config.clip_norm > 0:
        torch.nn.utils.clip_grads_with_norm_(parameters, config.clip_norm, norm)
    optimizer.step()
    loss.item(), norm.item()


def another_step_fits(now: float, until: float, last_step: float) -> bool:
    """Whether one more step, as long as the last, would end by ``until``: stopping only once
    past it would overshoot each size's share by up to a step (a large model's step is a
    large part of a short budget's share)."""
    return now + last_step <= until


PROBE_VOCABULARY = 100  # a character vocabulary's usual size: the output layer of the probe


def corpus_characters(data: str | None) -> int:
    """About how long the run's text is, without reading it: what picks the curves."""
    from rnnkit.data.corpora import BUNDLED_CORPUS, PYTHON_STDLIB, STDLIB_BYTES

    if not data:
        return BUNDLED_CORPUS.stat().st_size
    if data == PYTHON_STDLIB:
        return STDLIB_BYTES
    path = Path(data)
    return path.stat().st_size if path.is_file() else STDLIB_BYTES  # (a missing file: an
    # error soon, from the training itself)


def fit_to_machine(config, given: set[str]):
    """(config with the chosen size's settings, the Choice), or (config, None) where nothing
    is to be chosen: no budget, the size given, or several processes (each would measure on
    its own and might choose differently: they keep the budget's fixed defaults)."""
    if not config.time_budget or given & set(SIZE_FIELDS):
        return config, None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return config, None
    from rnnkit.training.trainer import device_for

    if config.threads:
        torch.set_num_threads(config.threads)  # measure as the run will train
    started = time.perf_counter()
    speeds = injected_step_seconds()
    if speeds is None and config.time_budget < SHORTEST_PROBED:
        return config, None
    if speeds is None:
        device = device_for(config.device)
        seconds = PROBE_AIM * 60 * config.time_budget
        speeds = probe(config, PROBE_VOCABULARY, device, seconds)
    characters = corpus_characters(config.data)
    choice = choose(config.time_budget, speeds, characters, time.perf_counter() - started,
                    Validation.of(config, characters))  # fmt: skip
    choice.injected = injected_step_seconds() is not None
    for name, value in choice.settings.items():
        if name not in given:
            setattr(config, name, value)
    return config, choice
