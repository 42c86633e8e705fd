"""One training step of the character model (B=32, T=128, embedding 64, 1 LSTM layer of H),
interleaved in one process: rnnkit's fast engine, rnnkit's reference, torch.nn.LSTM.

    .venv/bin/python bench/charlm_step.py 512   # prints median ms/step of 6 repetitions
"""

import statistics
import sys
import time

import torch
import torch.nn.functional as F

from rnnkit.models.charlm import CharLM


def main(hidden: int, repetitions: int = 11) -> None:
    torch.manual_seed(0)
    ours = CharLM(65, "lstm", 64, hidden, 1)
    theirs = CharLM(65, "lstm", 64, hidden, 1)
    theirs.rnn = torch.nn.LSTM(64, hidden, 1, batch_first=True)
    ids = torch.randint(0, 65, (32, 129))

    def step(model) -> float:
        started = time.perf_counter()
        logits, _ = model(ids[:, :-1])
        F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten()).backward()
        return time.perf_counter() - started

    times: dict[str, list[float]] = {"fast": [], "reference": [], "torch.nn": []}
    for _ in range(repetitions):
        ours.rnn.engine = "fast"
        times["fast"].append(step(ours))
        ours.rnn.engine = "reference"
        times["reference"].append(step(ours))
        times["torch.nn"].append(step(theirs))
    median = {k: statistics.median(v[1:]) for k, v in times.items()}  # the first is warm-up
    print(
        f"H={hidden}: " + ", ".join(f"{k} {1000 * v:.1f} ms" for k, v in median.items()),
        f"| fast/torch.nn {median['fast'] / median['torch.nn']:.2f}",
        f"| reference/torch.nn {median['reference'] / median['torch.nn']:.2f}",
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 512)
