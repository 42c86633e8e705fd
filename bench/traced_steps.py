"""A cell's step traced into ATen operators and run by a C++ loop (engine/traced.py) against
the same cell's Python step, side by side in one process.

    .venv/bin/python bench/traced_steps.py [--repeats 8]

Each row alternates the two paths on the same layer and input (RNNKIT_KERNELS=python gives the
Python step) and prints the medians and their ratio (below 1: the traced loop is faster), for
a training step (forward + backward of the output's sum) and for inference under no_grad. The
derived loops (bench/derived_steps.py), which an elementwise step takes before the traced
loop, are turned off here.
A second table puts the three built-in cells' definitions through the traced path (as a
subclass, which runs its own step) beside their registered, hand-written loops.
"""

import argparse
import contextlib
import os
import statistics
import time

import torch
from cells import UsersLSTM
from torch.nn.utils.rnn import PackedSequence

from rnnkit.cells import CELLS
from rnnkit.cells.gru import GRU
from rnnkit.cells.rnn import ElmanRNN
from rnnkit.engine import dispatch
from rnnkit.nn import runner
from rnnkit.nn.layers import Recurrent, make_layer

SHAPES = ((32, 128, 256), (4, 256, 64))  # (B, T, H): the cell bench's shape and a small one


class UsersGRU(GRU):
    """The GRU's equations as a user's cell (a subclass runs its own step)."""


class UsersRNN(ElmanRNN):
    """The Elman RNN's equations as a user's cell."""


@contextlib.contextmanager
def traced_only(on: bool = True):
    """Inside (when on): the derived loops (engine/derived_loop.py), which an elementwise step
    over equal lengths takes, decline every call, so the traced loop runs."""
    derived = runner.derived_direction
    if on:
        runner.derived_direction = lambda *args, **kwargs: None
    try:
        yield
    finally:
        runner.derived_direction = derived


def seconds(layer, x, train: bool, python: bool) -> float:
    if python:
        os.environ["RNNKIT_KERNELS"] = "python"
    try:
        return timed(layer, x, train)
    finally:
        os.environ.pop("RNNKIT_KERNELS", None)


def timed(layer, x, train: bool, traced: bool = True) -> float:
    """Seconds of one training step (forward + backward of the output's sum) or, without
    ``train``, one inference under no_grad; with ``traced``, the derived loops turned off."""
    with traced_only(traced):
        start = time.perf_counter()
        if train:
            output = layer(x)[0]
            (output.data if isinstance(output, PackedSequence) else output).sum().backward()
        else:
            with torch.no_grad():
                layer(x)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8)
    args = parser.parse_args()
    os.environ.pop("RNNKIT_KERNELS", None)
    dispatch._CELL_STEPS.clear()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| cell | B, T, H | mode | traced ms | Python step ms | traced ÷ Python |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for batch, steps, hidden in SHAPES:
        torch.manual_seed(0)
        x = torch.randn(steps, batch, hidden)
        cells = {
            "an LSTM as a user's cell": UsersLSTM(),
            "layernorm_lstm": CELLS["layernorm_lstm"](),
            "ligru": CELLS["ligru"](),
        }
        for name, cell in cells.items():
            layer = Recurrent(cell, hidden, hidden)
            for train in (True, False):
                times: dict[bool, list[float]] = {True: [], False: []}
                for _ in range(args.repeats + 1):  # the first round warms up (and traces)
                    for python in (False, True):
                        times[python].append(seconds(layer, x, train, python))
                traced, python = (statistics.median(times[p][1:]) for p in (False, True))
                mode = "train" if train else "infer"
                print(f"| {name} | {batch}, {steps}, {hidden} | {mode} | {1000 * traced:.1f} | "
                      f"{1000 * python:.1f} | {traced / python:.2f} |", flush=True)  # fmt: skip

    print("\n| built-in cell | B, T, H | mode | traced ms | registered loops ms | traced ÷ loops |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for batch, steps, hidden in SHAPES:
        torch.manual_seed(0)
        x = torch.randn(steps, batch, hidden)
        for name, users in (("lstm", UsersLSTM()), ("gru", UsersGRU()), ("rnn", UsersRNN())):
            traced_layer = Recurrent(users, hidden, hidden)
            registered = make_layer(name, hidden, hidden, engine="bptt")
            for train in (True, False):
                times = {0: [], 1: []}
                for _ in range(args.repeats + 1):
                    for k, layer in enumerate((traced_layer, registered)):
                        times[k].append(seconds(layer, x, train, python=False))
                traced, loops = (statistics.median(times[k][1:]) for k in (0, 1))
                mode = "train" if train else "infer"
                print(f"| {name} | {batch}, {steps}, {hidden} | {mode} | {1000 * traced:.1f} | "
                      f"{1000 * loops:.1f} | {traced / loops:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
