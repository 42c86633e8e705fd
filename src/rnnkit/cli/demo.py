"""`rnnkit demo`: the three layers side by side with torch.nn, equal in values and in training.

Part 1 loads torch.nn's weights into rnnkit's RNN, LSTM and GRU and prints the largest
difference of their outputs and gradients (float64). Part 2 trains each rnnkit layer and its
torch.nn twin from the same initial weights on the same batches of a memory task, "remember the
first symbol": a sequence starts with one of 4 symbols, `delay` random distractor symbols follow,
and the model must name the first symbol at the end (chance is 25%). It prints both training
losses, how far apart they ever were, the accuracy on new sequences and the time each took.
"""

import sys
import time
from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm

import rnnkit

SYMBOLS = 4  # the symbol to remember: 0..3
DISTRACTORS = 4  # filler symbols: 4..7


@dataclass
class DemoConfig:
    delay: int = 10
    steps: int = 300
    hidden_size: int = 32
    batch_size: int = 64
    lr: float = 1e-2
    seed: int = 0


def memory_batch(batch_size: int, delay: int, generator: torch.Generator):
    """One-hot inputs (T, B, 8) with T = delay + 1, and the first symbol of each sequence (B,)."""
    first = torch.randint(0, SYMBOLS, (batch_size,), generator=generator)
    filler = torch.randint(SYMBOLS, SYMBOLS + DISTRACTORS, (delay, batch_size), generator=generator)
    tokens = torch.cat([first.unsqueeze(0), filler])  # (T, B)
    return nn.functional.one_hot(tokens, SYMBOLS + DISTRACTORS).float(), first


def largest_difference_from_torch(kind: str) -> float:
    """Max |rnnkit − torch.nn| over outputs, states and all gradients, same weights, float64."""
    reference = getattr(nn, kind)(5, 8, num_layers=2, bidirectional=True).double()
    ours = getattr(rnnkit, kind)(5, 8, num_layers=2, bidirectional=True).double()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(12, 3, 5, dtype=torch.double)
    differences = []
    results = []
    for module in (ours, reference):
        output, state = module(x)
        states = state if isinstance(state, tuple) else (state,)
        loss = output.pow(2).sum() + sum(s.sum() for s in states)
        grads = torch.autograd.grad(loss, list(module.parameters()))
        results.append([output, *states, *grads])
    for a, b in zip(*results, strict=True):
        differences.append((a - b).abs().max().item())
    return max(differences)


@dataclass
class TrainingRun:
    losses: list[float]
    accuracy: float
    seconds: float


def train_memory_task(
    layer: nn.Module, config: DemoConfig, progress: bool, label: str
) -> TrainingRun:
    """Train `layer` + a linear head on the memory task, with batches drawn from `config.seed`."""
    torch.manual_seed(config.seed)  # the head's initial weights
    generator = torch.Generator().manual_seed(config.seed)
    head = nn.Linear(config.hidden_size, SYMBOLS)
    parameters = [*layer.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=config.lr)
    losses = []
    start = time.perf_counter()
    bar = tqdm(range(config.steps), desc=label, disable=not progress, leave=False)
    for _ in bar:
        inputs, first = memory_batch(config.batch_size, config.delay, generator)
        output, _ = layer(inputs)  # (T, B, H)
        loss = nn.functional.cross_entropy(head(output[-1]), first)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
    seconds = time.perf_counter() - start
    with torch.no_grad():
        inputs, first = memory_batch(1000, config.delay, generator)
        accuracy = (head(layer(inputs)[0][-1]).argmax(1) == first).float().mean().item()
    return TrainingRun(losses, accuracy, seconds)


def run_demo(config: DemoConfig, out=sys.stdout) -> dict[str, TrainingRun]:
    """Print both parts of the demonstration; returns rnnkit's training run per cell type."""
    progress = out.isatty() if hasattr(out, "isatty") else False
    print("1. rnnkit layers are drop-ins for torch.nn (same weights, float64):", file=out)
    for kind in ("RNN", "LSTM", "GRU"):
        difference = largest_difference_from_torch(kind)
        print(
            f"   {kind:>4}: largest difference in outputs and gradients {difference:.1e}", file=out
        )
    print(
        f"\n2. Each trained beside its torch.nn twin (same start, same batches): remember the\n"
        f"   first of {config.delay + 1} symbols ({config.steps} Adam steps, hidden size "
        f"{config.hidden_size}, float32, chance 25%):",
        file=out,
    )
    print(
        "          final loss            largest loss gap   accuracy          seconds\n"
        "          rnnkit / torch.nn     over all steps     rnnkit / torch.nn rnnkit / torch.nn",
        file=out,
    )
    runs = {}
    for kind in ("RNN", "LSTM", "GRU"):
        torch.manual_seed(config.seed)
        reference = getattr(nn, kind)(SYMBOLS + DISTRACTORS, config.hidden_size)
        ours = getattr(rnnkit, kind)(SYMBOLS + DISTRACTORS, config.hidden_size)
        ours.load_state_dict(reference.state_dict())
        run = train_memory_task(ours, config, progress, f"rnnkit.{kind}")
        twin = train_memory_task(reference, config, progress, f"torch.nn.{kind}")
        gap = max(abs(a - b) for a, b in zip(run.losses, twin.losses, strict=True))
        runs[kind] = run
        print(
            f"   {kind:>4}   {run.losses[-1]:.4f} / {twin.losses[-1]:.4f}       {gap:.1e}"
            f"            {run.accuracy:6.1%} / {twin.accuracy:6.1%}   "
            f"{run.seconds:5.1f} / {twin.seconds:5.1f}",
            file=out,
        )
    print(
        "\n   rnnkit's RNN and GRU run its hand-written BPTT (C++ loops); its float32 LSTM runs\n"
        "   torch's fused kernel, as torch.nn's does (engine='auto', rnnkit/engine/dispatch.py).",
        file=out,
    )
    return runs
