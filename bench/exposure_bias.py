"""Exposure bias, measured: train the same decoder at several teacher-forcing ratios and score
it teacher-forced (token accuracy: the reference as input) and free-running (greedy exact match:
its own outputs as input, as in real use).

    .venv/bin/python bench/exposure_bias.py          # caption, one epoch each: ~10 min on 2 cores

One epoch keeps the models imperfect, so that the gap between the two scores shows (the
dates task is learned perfectly in one epoch and shows nothing); the full-size runs are in
docs/experiments/2026-11-29-tasks.md.
"""

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from rnnkit.tasks import get_task
from rnnkit.tasks.training import train

SETTINGS = [
    ("1.0 (always the reference)", {"teacher_forcing": 1.0}),
    ("0.75", {"teacher_forcing": 0.75}),
    ("0.5", {"teacher_forcing": 0.5}),
    ("0.0 (always its own output)", {"teacher_forcing": 0.0}),
    ("scheduled 1.0 -> 0.5", {"teacher_forcing": 0.5, "scheduled_sampling": True}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="caption", choices=("dates", "translate", "caption"))
    parser.add_argument("--train-examples", type=int, default=0, help="0: all")
    parser.add_argument("--max-epochs", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    task = get_task(args.task)
    rows = []
    for label, setting in SETTINGS:
        scores = []
        for seed in args.seeds:
            config = task.config(
                train_examples=args.train_examples,
                max_epochs=args.max_epochs,
                seed=seed,
                beam_width=1,
                **setting,
            )
            with tempfile.TemporaryDirectory() as folder:
                test = train(task, config, Path(folder) / "run", log=lambda *a: None)["test"]
            scores.append((test["token_accuracy"], test["exact_match"]))
        forced = statistics.median(s[0] for s in scores)
        free = statistics.median(s[1] for s in scores)
        rows.append({"ratio": label, "teacher_forced_token_accuracy": forced,
                     "free_running_exact_match": free, "runs": scores})  # fmt: skip
        print(f"| {label} | {forced:.4f} | {free:.4f} |", flush=True)
    if args.json:
        args.json.write_text(
            json.dumps({"task": args.task, **vars(args), "rows": rows}, default=str)
        )


if __name__ == "__main__":
    main()
