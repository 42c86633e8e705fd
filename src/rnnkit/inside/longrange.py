"""Long-range memory: the adding and copy-memory problems, each cell type on the same budget.

Adding problem (Hochreiter & Schmidhuber 1997, in the form of Arjovsky et al. 2016). Each of
T steps reads two numbers: a value drawn from U[0, 1] and a marker, 1 at exactly two steps (one
in the first half, one in the second) and 0 elsewhere. After the last step the model outputs the
sum of the two marked values. Always answering 1 (the mean) gives a mean squared error of
Var(u1 + u2) = 2/12 ≈ 0.167; we count a run as solved when its test MSE is below 0.01, 6% of
that baseline.

Copy memory (Arjovsky et al. 2016). Ten symbols from an alphabet of 8 are shown, then T blanks,
then a delimiter, then 10 more blanks during which the model must output the ten symbols in
order; everywhere else the target is the blank. Total length T + 20, so T is the delay between
seeing a symbol and recalling it. Guessing gets 1/8 = 12.5% of the recalled symbols right; we
count a run as solved when it recalls at least 90% of them on the test set.

Every cell type gets the same number of parameters (the hidden size is the largest that fits
the budget: about 2.1x as many units for the RNN as for the LSTM) and the same wall-clock
training time, with Adam (learning rate 3e-3), gradient clipping at 1.0 and fresh random
batches every step. The test set is 1,000 sequences drawn from a separate seed.
"""

import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells import cell_from_spec
from rnnkit.nn.layers import make_layer

ALPHABET = 8  # copy memory: symbols 1..8; 0 is the blank, 9 the delimiter
COPY_CLASSES = ALPHABET + 2
REMEMBER = 10  # copy memory: symbols to remember
ADDING_SOLVED = 0.01  # test MSE below this (baseline 0.167)
COPY_SOLVED = 0.90  # recalled-symbol accuracy at or above this (chance 0.125)
TASKS = {"adding": (2, 1), "copy": (COPY_CLASSES, COPY_CLASSES)}  # task -> (input, output) size


def adding_batch(batch: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """-> inputs (T, B, 2) [value, marker], targets (B,) the sum of the two marked values."""
    values = torch.rand(length, batch, generator=generator)
    half = max(1, length // 2)
    first = torch.randint(0, half, (batch,), generator=generator)
    second = torch.randint(half, length, (batch,), generator=generator) if length > 1 else first
    markers = torch.zeros(length, batch)
    columns = torch.arange(batch)
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    targets = values[first, columns] + values[second, columns]
    return torch.stack([values, markers], dim=-1), targets


def copy_batch(batch: int, delay: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """-> one-hot inputs (T+20, B, 10), targets (T+20, B) class ids (0 blank)."""
    symbols = torch.randint(1, ALPHABET + 1, (REMEMBER, batch), generator=generator)
    length = delay + 2 * REMEMBER
    ids = torch.zeros(length, batch, dtype=torch.long)
    ids[:REMEMBER] = symbols
    ids[REMEMBER + delay - 1] = ALPHABET + 1  # the delimiter: "recall now"
    targets = torch.zeros(length, batch, dtype=torch.long)
    targets[-REMEMBER:] = symbols
    return F.one_hot(ids, COPY_CLASSES).float(), targets


class TaskModel(nn.Module):
    """A recurrent layer and a linear read-out of its outputs."""

    def __init__(self, kind: str, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.rnn = make_layer(kind, input_size, hidden_size)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, inputs: Tensor) -> Tensor:
        return self.head(self.rnn(inputs)[0])  # (T, B, output)


def parameter_count(kind, input_size: int, hidden_size: int, output_size: int) -> int:
    """The parameters of TaskModel, counted from the cell's declared shapes (``kind``: a
    cell's name or spec, or its definition)."""
    cell = cell_from_spec(kind) if isinstance(kind, str) else kind
    shapes = cell.weight_shapes(input_size, hidden_size, 0, bias=True)
    recurrent = sum(math.prod(shape) for shape in shapes.values())
    return recurrent + output_size * (hidden_size + 1)


def hidden_size_for_budget(kind: str, input_size: int, output_size: int, budget: int) -> int:
    """The largest hidden size whose model has at most ``budget`` parameters."""
    cell = cell_from_spec(kind)  # read once, not once per size tried
    hidden = 1
    while parameter_count(cell, input_size, hidden + 1, output_size) <= budget:
        hidden += 1
    return hidden


@dataclass
class LongRangeResult:
    task: str
    cell: str
    delay: int
    hidden_size: int
    parameters: int
    steps: int
    seconds: float
    metric: float  # adding: test MSE; copy: recalled-symbol accuracy
    solved: bool


def make_batch(task: str, batch: int, delay: int, generator: torch.Generator):
    return (
        adding_batch(batch, delay, generator)
        if task == "adding"
        else copy_batch(batch, delay, generator)
    )


def loss_and_metric(task: str, outputs: Tensor, targets: Tensor) -> tuple[Tensor, float]:
    """Training loss, and the task's metric (MSE, or recalled-symbol accuracy)."""
    if task == "adding":
        prediction = outputs[-1, :, 0]
        loss = F.mse_loss(prediction, targets)
        return loss, float(loss.detach())
    loss = F.cross_entropy(outputs.flatten(0, 1), targets.flatten())
    recalled = outputs[-REMEMBER:].argmax(-1) == targets[-REMEMBER:]
    return loss, float(recalled.float().mean())


def train_one(
    task: str,
    cell: str,
    delay: int,
    budget: int = 20_000,
    seconds: float = 30.0,
    batch: int = 64,
    learning_rate: float = 3e-3,
    seed: int = 0,
    max_steps: int | None = None,
    test_size: int = 1000,
) -> LongRangeResult:
    """Train one cell type on one task for a wall-clock budget; evaluate on the test set."""
    input_size, output_size = TASKS[task]
    hidden = hidden_size_for_budget(cell, input_size, output_size, budget)
    torch.manual_seed(seed)
    model = TaskModel(cell, input_size, hidden, output_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    started, steps = time.perf_counter(), 0
    while time.perf_counter() - started < seconds and (max_steps is None or steps < max_steps):
        inputs, targets = make_batch(task, batch, delay, generator)
        loss, _ = loss_and_metric(task, model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        if all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None):
            optimizer.step()
        steps += 1
    elapsed = time.perf_counter() - started
    metric = evaluate(model, task, delay, test_size, seed)
    solved = metric < ADDING_SOLVED if task == "adding" else metric >= COPY_SOLVED
    return LongRangeResult(
        task,
        cell,
        delay,
        hidden,
        sum(p.numel() for p in model.parameters()),
        steps,
        elapsed,
        metric,
        solved,
    )


@torch.no_grad()
def evaluate(model: TaskModel, task: str, delay: int, size: int, seed: int) -> float:
    """The metric on `size` test sequences from a seed the training never uses."""
    model.eval()
    generator = torch.Generator().manual_seed(1_000_003 + seed)
    inputs, targets = make_batch(task, size, delay, generator)
    _, metric = loss_and_metric(task, model(inputs), targets)
    model.train()
    return metric if math.isfinite(metric) else float("inf")


def run_grid(tasks, cells, delays, seconds, budget, seed, progress=print) -> list[dict]:
    results = []
    for task in tasks:
        for delay in delays:
            for cell in cells:
                result = train_one(task, cell, delay, budget, seconds, seed=seed)
                progress(format_row(result))
                results.append(asdict(result))
    return results


def format_row(result: LongRangeResult) -> str:
    metric = f"MSE {result.metric:.4f}" if result.task == "adding" else f"acc {result.metric:.3f}"
    return (
        f"{result.task:<7} T={result.delay:<4} {result.cell.upper():<5} H={result.hidden_size:<4} "
        f"{result.parameters:>6} params {result.steps:>6} steps {result.seconds:5.0f} s  "
        f"{metric}  {'solved' if result.solved else '-'}"
    )


def format_table(results: list[dict], cells: list[str]) -> str:
    """Markdown: one row per task and delay, one column per cell type."""
    lines = [
        "| task | T | " + " | ".join(c.upper() for c in cells) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in cells) + " |",
    ]
    keys = dict.fromkeys((r["task"], r["delay"]) for r in results)
    for task, delay in keys:
        cells_text = []
        for cell in cells:
            match = [
                r for r in results if (r["task"], r["delay"], r["cell"]) == (task, delay, cell)
            ]
            if not match:
                cells_text.append("")
                continue
            r = match[0]
            value = f"MSE {r['metric']:.3f}" if task == "adding" else f"{100 * r['metric']:.0f}%"
            cells_text.append(f"**{value}**" if r["solved"] else value)
        lines.append(f"| {task} | {delay} | " + " | ".join(cells_text) + " |")
    return "\n".join(lines)


def plot(results: list[dict], png) -> None:
    """One panel per task: the metric against the delay, one line per cell type."""
    # a Figure of its own, not pyplot: drawing a file never changes the backend of the
    # program that called it (a notebook keeps its inline plots)
    from matplotlib.figure import Figure

    tasks = list(dict.fromkeys(r["task"] for r in results))
    figure = Figure(figsize=(6 * len(tasks), 4), dpi=100)
    axes = figure.subplots(1, len(tasks))
    axes = [axes] if len(tasks) == 1 else list(axes)
    for axis, task in zip(axes, tasks, strict=True):
        for cell in dict.fromkeys(r["cell"] for r in results):
            rows = sorted(
                (r for r in results if r["task"] == task and r["cell"] == cell),
                key=lambda r: r["delay"],
            )
            axis.plot(
                [r["delay"] for r in rows],
                [r["metric"] for r in rows],
                marker="o",
                label=cell.upper(),
            )
        if task == "adding":
            axis.axhline(2 / 12, color="grey", linestyle=":", label="always 1 (0.167)")
            axis.axhline(ADDING_SOLVED, color="green", linestyle="--", label="solved (0.01)")
            axis.set_yscale("log")
            axis.set_ylabel("test MSE (lower is better)")
        else:
            axis.axhline(1 / ALPHABET, color="grey", linestyle=":", label="chance (12.5%)")
            axis.axhline(COPY_SOLVED, color="green", linestyle="--", label="solved (90%)")
            axis.set_ylabel("recalled symbols correct")
        axis.set_xscale("log")
        axis.set_xlabel("delay T (steps)")
        axis.set_title(f"{task} problem")
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(png)
