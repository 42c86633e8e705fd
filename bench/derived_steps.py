"""An elementwise cell's derived loops (engine/derived_loop.py: its step and derived backward
as two programs, one pass a step) against the same cell's traced loop (engine/traced.py: the
step's ATen operators one by one, autograd recording each) and, for the built-in cells'
definitions, against their registered hand-written loops; side by side in one process.

    .venv/bin/python bench/derived_steps.py [--repeats 8] [--threads N]

Each row alternates the paths on the same layer and input and prints the medians and their
ratio (below 1: the derived loops are faster), for a training step (forward + backward of the
output's sum) and for inference under no_grad. The traced column turns the derived loops off
for the call (they are otherwise taken for every elementwise step over equal lengths).
"""

import argparse
import statistics
import time

import torch
from cells import UsersLSTM
from traced_steps import UsersGRU, UsersRNN, traced_only

from rnnkit.cells import CELLS
from rnnkit.nn.layers import Recurrent, make_layer

SHAPES = ((32, 128, 256), (4, 256, 64))  # (B, T, H): the cell bench's shape and a small one


def seconds(layer, x, train: bool, traced: bool = False) -> float:
    with traced_only(traced):
        start = time.perf_counter()
        if train:
            layer(x)[0].sum().backward()
        else:
            with torch.no_grad():
                layer(x)
        return time.perf_counter() - start


def alternate(paths, x, train: bool, repeats: int) -> list[float]:
    """The median seconds of each path ((layer, traced) pairs), alternating, after one round
    that warms up (and derives and traces the steps)."""
    times: list[list[float]] = [[] for _ in paths]
    for _ in range(repeats + 1):
        for k, (layer, traced) in enumerate(paths):
            times[k].append(seconds(layer, x, train, traced))
    return [statistics.median(t[1:]) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's own)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| cell | B, T, H | mode | derived ms | traced ms | derived ÷ traced |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for batch, steps, hidden in SHAPES:
        torch.manual_seed(0)
        x = torch.randn(steps, batch, hidden)
        cells = {"an LSTM as a user's cell": UsersLSTM()}
        names = ("layernorm_lstm", "peephole_lstm", "ligru", "indrnn", "sru")
        cells.update({name: CELLS[name]() for name in names})
        for name, cell in cells.items():
            layer = Recurrent(cell, hidden, hidden)
            for train in (True, False):
                paths = [(layer, False), (layer, True)]
                derived, traced = alternate(paths, x, train, args.repeats)
                mode = "train" if train else "infer"
                print(f"| {name} | {batch}, {steps}, {hidden} | {mode} | {1000 * derived:.1f} | "
                      f"{1000 * traced:.1f} | {derived / traced:.2f} |", flush=True)  # fmt: skip

    print("\n| built-in cell | B, T, H | mode | derived ms | registered loops ms | "
          "derived ÷ loops |")  # fmt: skip
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for batch, steps, hidden in SHAPES:
        torch.manual_seed(0)
        x = torch.randn(steps, batch, hidden)
        for name, users in (("lstm", UsersLSTM()), ("gru", UsersGRU()), ("rnn", UsersRNN())):
            derived_layer = Recurrent(users, hidden, hidden)
            registered = make_layer(name, hidden, hidden, engine="bptt")
            for train in (True, False):
                paths = [(derived_layer, False), (registered, False)]
                derived, loops = alternate(paths, x, train, args.repeats)
                mode = "train" if train else "infer"
                print(f"| {name} | {batch}, {steps}, {hidden} | {mode} | {1000 * derived:.1f} | "
                      f"{1000 * loops:.1f} | {derived / loops:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
