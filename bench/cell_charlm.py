"""Every shipped cell as a char model on Tiny Shakespeare, at one parameter and time budget.

    .venv/bin/python bench/cell_charlm.py --out runs/cell-charlm [--minutes 4.7] [--threads 1]

Each cell gets the largest hidden size whose recurrent layer has at most as many parameters as
the LSTM's at 256 units, counting the output layer (``rnnkit.inside.longrange.
hidden_size_for_budget``, with the embedding's 64 columns as input and Tiny Shakespeare's 65
characters as output), and one `rnnkit train --time-budget MINUTES` at the budget's
defaults. One JSON line per run goes to OUT/results.jsonl (a cell already there is skipped).
"""

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from rnnkit.cell_names import CELL_NAMES
from rnnkit.inside.longrange import hidden_size_for_budget, parameter_count

EMBEDDING = 64  # the char model's default embedding size: the recurrent layer's input
VOCABULARY = 65  # Tiny Shakespeare's characters: the output layer's size
DONE = re.compile(r"done: (\d+) steps, validation ([0-9.]+) nats/char")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=4.7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--cells", nargs="*", default=list(CELL_NAMES))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    done = set()
    if results.exists():
        done = {json.loads(line)["cell"] for line in results.read_text().splitlines() if line}
    budget = parameter_count("lstm", EMBEDDING, 256, VOCABULARY)
    for cell in args.cells:
        if cell in done:
            continue
        hidden = hidden_size_for_budget(cell, EMBEDDING, VOCABULARY, budget)
        rnnkit = str(Path(sys.executable).parent / "rnnkit")
        command = [rnnkit, "train", "--out", str(args.out / cell), "--cell", cell,
                   "--hidden-size", str(hidden), "--time-budget", str(args.minutes),
                   "--threads", str(args.threads), "--seed", str(args.seed)]  # fmt: skip
        start = time.perf_counter()
        finished = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        found = DONE.search(finished.stdout + finished.stderr)
        if finished.returncode != 0 or not found:
            print(f"{cell}: failed\n{finished.stderr[-2000:]}", file=sys.stderr)
            continue
        row = dict(cell=cell, hidden_size=hidden,
                   parameters=parameter_count(cell, EMBEDDING, hidden, VOCABULARY),
                   steps=int(found[1]), val_loss=float(found[2]), seconds=round(seconds, 1),
                   minutes=args.minutes, threads=args.threads, seed=args.seed,
                   date=time.strftime("%Y-%m-%d %H:%M"))  # fmt: skip
        with results.open("a") as file:
            file.write(json.dumps(row) + "\n")
        print(f"{cell}: {row['val_loss']:.4f} after {row['steps']} steps", flush=True)


if __name__ == "__main__":
    main()
