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
import subprocess
import sys
from pathlib import Path

import torch
from cells import UsersLSTM
from torch.nn.utils.rnn import pack_sequence
from traced_steps import UsersGRU, UsersRNN, timed

from rnnkit.cells import CELLS
from rnnkit.nn.layers import Recurrent, make_layer

SHAPES = ((32, 128, 256), (4, 256, 64))  # (B, T, H): the cell bench's shape and a small one


def alternate(paths, x, train: bool, repeats: int) -> list[float]:
    """The median seconds of each path ((layer, traced) pairs), alternating, after one round
    that warms up (and derives and traces the steps)."""
    times: list[list[float]] = [[] for _ in paths]
    for _ in range(repeats + 1):
        for k, (layer, traced) in enumerate(paths):
            times[k].append(timed(layer, x, train, traced))
    return [statistics.median(t[1:]) for t in times]


def rows(name: str, shape: tuple, paths, x, repeats: int) -> None:
    """One table row per mode: the two paths' medians and their ratio."""
    batch, steps, hidden = shape
    for train in (True, False):
        first, second = alternate(paths, x, train, repeats)
        mode = "train" if train else "infer"
        print(f"| {name} | {batch}, {steps}, {hidden} | {mode} | {1000 * first:.1f} | "
              f"{1000 * second:.1f} | {first / second:.2f} |", flush=True)  # fmt: skip


MEMORY_SCRIPT = """
import resource, sys, torch
sys.path.insert(0, {bench!r})
from cells import UsersLSTM
from traced_steps import timed
from rnnkit.nn.layers import Recurrent, make_layer
path = {path!r}
layer = make_layer("lstm", 256, 256, engine="bptt") if path == "loops" else Recurrent(
    UsersLSTM(), 256, 256)
x = torch.randn(128, 32, 256)
with torch.no_grad():
    layer(x[:1])  # load the loops, derive or trace the step
with open("/proc/self/statm") as statm:  # resident pages now, in KiB like VmHWM
    before = int(statm.read().split()[1]) * resource.getpagesize() // 1024
timed(layer, x, True, traced=path == "traced")
# VmHWM, this process's own peak: ru_maxrss would carry the parent's across the exec
with open("/proc/self/status") as status:
    print(int(status.read().split("VmHWM:")[1].split()[0]) - before)
"""


def peak_mib(path: str) -> float:
    """Peak resident memory one training step of the user's LSTM adds (B=32, T=128, H=256),
    in a fresh process: through the derived loops, the traced loop, or ("loops") rnnkit's
    hand-written LSTM loops."""
    script = MEMORY_SCRIPT.format(bench=str(Path(__file__).parent), path=path)
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True)  # fmt: skip
    return int(found.stdout.split()[-1]) / 1024


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
    for shape in SHAPES:
        torch.manual_seed(0)
        x = torch.randn(shape[1], shape[0], shape[2])
        cells = {"an LSTM as a user's cell": UsersLSTM()}
        names = ("layernorm_lstm", "peephole_lstm", "ligru", "indrnn", "sru")
        cells.update({name: CELLS[name]() for name in names})
        for name, cell in cells.items():
            layer = Recurrent(cell, shape[2], shape[2])
            rows(name, shape, [(layer, False), (layer, True)], x, args.repeats)

    # A packed batch of unequal lengths (64 to 128 steps), sorted as pack_sequence wants.
    generator = torch.Generator().manual_seed(0)
    lengths = sorted(torch.randint(64, 129, (32,), generator=generator).tolist(), reverse=True)
    x = pack_sequence([torch.randn(n, 256, generator=generator) for n in lengths])
    for name, cell in (("an LSTM as a user's cell", UsersLSTM()), ("sru", CELLS["sru"]()),
                       ("layernorm_lstm", CELLS["layernorm_lstm"]())):  # fmt: skip
        layer = Recurrent(cell, 256, 256)
        rows(f"{name}, packed", (32, "64-128", 256), [(layer, False), (layer, True)], x,
             args.repeats)  # fmt: skip

    print("\nPeak memory of one training step of an LSTM as a user's cell (B=32, T=128, H=256),"
          " each in a fresh process: derived loops "
          f"{peak_mib('derived'):.0f} MiB, traced loop {peak_mib('traced'):.0f} MiB, rnnkit's "
          f"hand-written LSTM loops {peak_mib('loops'):.0f} MiB")  # fmt: skip

    print("\n| built-in cell | B, T, H | mode | derived ms | registered loops ms | "
          "derived ÷ loops |")  # fmt: skip
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for shape in SHAPES:
        torch.manual_seed(0)
        x = torch.randn(shape[1], shape[0], shape[2])
        for name, users in (("lstm", UsersLSTM()), ("gru", UsersGRU()), ("rnn", UsersRNN())):
            derived = Recurrent(users, shape[2], shape[2])
            registered = make_layer(name, shape[2], shape[2], engine="bptt")
            rows(name, shape, [(derived, False), (registered, False)], x, args.repeats)


if __name__ == "__main__":
    main()
