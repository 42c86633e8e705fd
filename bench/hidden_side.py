"""W_hh's gradient as one product for the whole sequence (engine/kernels/hidden_side.cpp)
against one product and one addition per step (autograd's at::linear), side by side.

    .venv/bin/python bench/hidden_side.py [--threads 1 2] [--repeats 15]

The two C++ loops whose steps autograd records use it: a user's cell's traced loop (the LSTM's
equations as a user's cell) and a built-in cell over a packed batch. Each row alternates the
two ways on the same layer and input (the per-step way by telling the loop that forward mode
is on, which is when it is used) and prints the medians of a training step (forward and
backward of the output's sum) and the median of their ratios (below 1: one product is
faster), beside torch.nn's layer at the same shapes.
"""

import argparse
import statistics
import time

import torch
from cells import UsersLSTM
from torch.nn.utils.rnn import pack_sequence

import rnnkit.nn.recurrence
import rnnkit.nn.runner
from rnnkit.cells import CELLS
from rnnkit.nn.layers import Recurrent

B, T, H = 32, 128, 256
USERS = (rnnkit.nn.runner, rnnkit.nn.recurrence)  # the modules that ask only_backward_mode


def per_step(*tensors) -> bool:
    return False


def train_step(layer, x) -> float:
    start = time.perf_counter()
    output = layer(x)[0]
    (output.data if hasattr(output, "batch_sizes") else output).sum().backward()
    return time.perf_counter() - start


def rows(threads: int, repeats: int):
    torch.manual_seed(0)
    dense = torch.randn(T, B, H)
    packed = pack_sequence([torch.randn(T - 2 * i, H) for i in range(B)])  # lengths 128..66
    cases = [
        ("an LSTM as a user's cell", Recurrent(UsersLSTM(), H, H), torch.nn.LSTM(H, H), dense),
        ("lstm, packed", Recurrent(CELLS["lstm"](), H, H), torch.nn.LSTM(H, H), packed),
        ("gru, packed", Recurrent(CELLS["gru"](), H, H), torch.nn.GRU(H, H), packed),
    ]
    deferred = {module: module.only_backward_mode for module in USERS}
    for label, layer, theirs, x in cases:
        times = {"one product": [], "per step": [], "torch.nn": []}
        for _ in range(repeats + 1):  # the first round warms up
            for way in ("one product", "per step"):
                for module in USERS:
                    chosen = deferred[module] if way == "one product" else per_step
                    module.only_backward_mode = chosen
                times[way].append(train_step(layer, x))
            times["torch.nn"].append(train_step(theirs, x))
        for module in USERS:
            module.only_backward_mode = deferred[module]
        one, each, nn = (times[k][1:] for k in ("one product", "per step", "torch.nn"))
        ratio = statistics.median(a / b for a, b in zip(one, each, strict=True))
        yield (label, threads, 1000 * statistics.median(one), 1000 * statistics.median(each),
               1000 * statistics.median(nn), ratio)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    print(f"B={B}, T={T} (packed: lengths {T} down to {T - 2 * (B - 1)}), input and hidden {H}")
    print("| layer | threads | one product ms | per step ms | torch.nn ms (torch's kernel) "
          "| one product ÷ per step |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for label, n, one, each, nn, ratio in rows(threads, args.repeats):
            print(f"| {label} | {n} | {one:.1f} | {each:.1f} | {nn:.1f} | {ratio:.3f} |",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
