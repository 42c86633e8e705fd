"""Every cell's layer beside torch.nn.LSTM: forward + backward time, as a ratio.

    .venv/bin/python bench/cell_speed.py [--batch 32] [--steps 64] [--hidden 256] [--threads 1]

Each row times ``layer(x)[0].sum().backward()`` for one rnnkit layer and for torch.nn.LSTM at
the same shapes, alternating the two, and prints the median ratio (rnnkit / torch.nn.LSTM; the
LSTM row is torch's oneDNN kernel through rnnkit's fused path, labelled so). RNN, LSTM and GRU
run their registered fast paths; every other cell runs its own step in a Python loop under
autograd (the reference): what a cell without a fast path costs today.
"""

import argparse
import statistics
import time

import torch

from rnnkit.cells import CELLS
from rnnkit.nn.layers import make_layer


def seconds(layer, x) -> float:
    start = time.perf_counter()
    layer(x)[0].sum().backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.steps, args.batch, args.hidden)
    reference = torch.nn.LSTM(args.hidden, args.hidden)
    print(f"B={args.batch} T={args.steps} H={args.hidden}, {args.threads} thread(s), forward + "
          f"backward, median of {args.repeats}; ratio = rnnkit / torch.nn.LSTM")  # fmt: skip
    print("| cell | path | ms | torch.nn.LSTM ms | ratio |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name in CELLS:
        layer = make_layer(name, args.hidden, args.hidden)
        path = {"lstm": "torch's kernel (fused)", "gru": "rnnkit BPTT (C++)",
                "rnn": "rnnkit BPTT (C++)"}.get(name, "its own step (Python loop)")  # fmt: skip
        seconds(layer, x), seconds(reference, x)  # warm-up (the C++ loops build on first use)
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours.append(seconds(layer, x))
            theirs.append(seconds(reference, x))
        ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
        print(f"| {name} | {path} | {1000 * statistics.median(ours):.0f} | "
              f"{1000 * statistics.median(theirs):.0f} | {ratio:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
