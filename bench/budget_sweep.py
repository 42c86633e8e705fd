"""The measurements behind `--time-budget`'s choice: validation loss after N steps, per size.

    .venv/bin/python bench/budget_sweep.py --out runs/sweep [--threads 1] [--only 1x256]
    .venv/bin/python bench/budget_sweep.py --out runs/sweep --data python-stdlib

A run's loss after N steps does not depend on how fast the machine is, only on N (the schedule
is fitted to N, as a time budget fits it to the minutes): so one sweep over step counts serves
every machine, and a machine's speed only says how many steps each size will get. Each point
is one `rnnkit train --max-steps N` (evaluated once, at the end, on the whole validation split)
at the settings of one candidate size; the results go, one JSON line per run, to
OUT/results.jsonl (a run already there is skipped, so the sweep can be stopped and restarted).
"""

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

# The candidate sizes and their settings beside the steps to try: the short-budget defaults of
# the 1x256 model (and with some dropout, for a slow machine's many steps), the same recipe at
# 384 and 512 with more dropout the wider (and the 512 with less), and the long-budget 2x512
# recipe (and with less dropout).
COMMON = [
    "--seq-len",
    "64",
    "--shift-epochs",
    "--min-lr",
    "0",
    "--activation-reg",
    "2",
    "--temporal-activation-reg",
    "1",
]
SIZES = {
    "1x256": (["--hidden-size", "256", "--dropout", "0", "--lr", "5e-3", "--warmup-steps", "50"],
              (1000, 2000, 4000, 8000, 16000)),
    # the 1x256 with dropout: on one thread a 4.7-minute budget gives it 5,000 steps, where the
    # plain 1x256 over-fits
    "1x256-d0.1": (["--hidden-size", "256", "--dropout", "0.1", "--lr", "5e-3",
                    "--warmup-steps", "50"],
                   (2000, 4000, 8000)),
    "1x384": (["--hidden-size", "384", "--dropout", "0.15", "--lr", "5e-3",
               "--warmup-steps", "50"],
              (1000, 2000, 4000, 8000)),
    "1x512": (["--hidden-size", "512", "--dropout", "0.25", "--lr", "5e-3",
               "--warmup-steps", "50"],
              (500, 1000, 2000, 4000, 8000)),
    # the 1x512 with less dropout: a short budget gives it only a few epochs
    "1x512-d0.1": (["--hidden-size", "512", "--dropout", "0.1", "--lr", "5e-3",
                    "--warmup-steps", "50"],
                   (1000, 2000, 4000)),
    # the 1x512 with still less dropout: a quiet 4.7 minutes gives it under three epochs
    "1x512-d0.05": (["--hidden-size", "512", "--dropout", "0.05", "--lr", "5e-3",
                     "--warmup-steps", "50"],
                    (1000, 2000, 4000)),
    # a higher learning rate for the short runs of a slow machine (the 1x512's 1,400-1,700
    # steps, the 1x256's 4,000-5,000 on one thread beside another run at 4.7 minutes)
    "1x512-d0.05-lr0.01": (["--hidden-size", "512", "--dropout", "0.05", "--lr", "1e-2",
                            "--warmup-steps", "50"],
                           (1000, 2000, 4000)),
    "1x256-lr0.01": (["--hidden-size", "256", "--dropout", "0", "--lr", "1e-2",
                      "--warmup-steps", "50"],
                     (1000, 2000, 4000, 8000)),
    "2x512": (["--num-layers", "2", "--hidden-size", "512", "--variational-dropout",
               "--weight-decay", "0.1"],
              (500, 1000, 2000, 4000)),
    "2x512-d0.1": (["--num-layers", "2", "--hidden-size", "512", "--variational-dropout",
                    "--dropout", "0.1", "--weight-decay", "0.1"],
                   (1000, 2000, 4000)),
    # the 2x512 recipes at a higher peak learning rate (3e-3 above): one thread gives them
    # only 3,400-4,000 steps in 30 minutes
    "2x512-lr5e-3": (["--num-layers", "2", "--hidden-size", "512", "--variational-dropout",
                      "--weight-decay", "0.1", "--lr", "5e-3"],
                     (2000, 4000)),
    "2x512-d0.1-lr5e-3": (["--num-layers", "2", "--hidden-size", "512",
                           "--variational-dropout", "--dropout", "0.1", "--weight-decay", "0.1",
                           "--lr", "5e-3"],
                          (2000, 4000)),
}  # fmt: skip

DONE = re.compile(r"done: (\d+) steps, validation ([0-9.]+) nats/char")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--data", default=None, help="corpus (default: Tiny Shakespeare)")
    parser.add_argument("--only", nargs="*", default=None, help="sizes to run (default: all)")
    parser.add_argument("--steps", type=int, nargs="*", default=None, help="override the steps")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    done = set()
    if results.exists():
        done = {json.loads(line)["name"] for line in results.read_text().splitlines() if line}
    corpus = args.data or "tinyshakespeare"
    for size, (settings, steps_list) in SIZES.items():
        if args.only and size not in args.only:
            continue
        for steps in args.steps or steps_list:
            name = f"{corpus}-{size}-{steps}-seed{args.seed}-t{args.threads}"
            if name in done:
                continue
            rnnkit = str(Path(sys.executable).parent / "rnnkit")
            command = [rnnkit, "train", "--out", str(args.out / name),
                       "--max-steps", str(steps), "--eval-interval", str(steps),
                       "--threads", str(args.threads), "--seed", str(args.seed),
                       *COMMON, *settings]  # fmt: skip
            if args.data:
                command += ["--data", args.data]
            start = time.perf_counter()
            finished = subprocess.run(command, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            found = DONE.search(finished.stdout + finished.stderr)
            if finished.returncode != 0 or not found:
                print(f"{name}: failed\n{finished.stderr[-2000:]}", file=sys.stderr)
                continue
            row = dict(name=name, corpus=corpus, size=size, steps=int(found[1]),
                       val_loss=float(found[2]), seconds=round(seconds, 1),
                       threads=args.threads, seed=args.seed, settings=COMMON + settings,
                       date=time.strftime("%Y-%m-%d %H:%M"))  # fmt: skip
            with results.open("a") as file:
                file.write(json.dumps(row) + "\n")
            print(f"{name}: {row['val_loss']:.4f} in {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
