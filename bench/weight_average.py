"""The moving average of the weights against the raw weights, on one training trajectory.

`rnnkit train` with `--ema-decay` validates only the average. This runs the same command and,
at every validation from step --from on, also scores the raw weights the optimizer trains,
so the two compare on the same run (no seed noise between them). It appends
"step,raw,average" rows to RUN/averages.csv. The extra passes take time from the budget
(a full pass over the validation text each), so the run makes fewer steps than a plain one.

    .venv/bin/python bench/weight_average.py --from 2000 -- --out /tmp/ema --time-budget 30 \\
        --ema-decay 0.999

docs/experiments/2026-11-29-language-model.md ("A moving average of the weights, ...") came
from this script.
"""

import argparse
import sys

from rnnkit.cli import main as rnnkit_main
from rnnkit.training import language_model


def paired_trainer(start: int) -> type:
    class PairedTrainer(language_model.Trainer):
        def _validate(self, should_stop):
            average = super()._validate(should_stop)
            if self.average is None or average is None or self.step < start:
                return average
            # the raw weights: the average is swapped out again
            raw = self.job.evaluate(self.step, should_stop)
            if raw is not None and self.ranks.is_main:
                with (self.run_dir / "averages.csv").open("a") as file:
                    file.write(f"{self.step},{raw.loss:.6f},{average.loss:.6f}\n")
            return average

    return PairedTrainer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="start", type=int, default=0, help="first step to pair")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then `rnnkit train` flags")
    args = parser.parse_args()
    train_args = [a for a in args.train_args if a != "--"]
    if "--ema-decay" not in train_args:
        parser.error("give `rnnkit train` an --ema-decay to compare, e.g. -- --ema-decay 0.999")
    language_model.Trainer = paired_trainer(args.start)  # train() builds its trainer from this name
    return rnnkit_main(["train", *train_args])


if __name__ == "__main__":
    sys.exit(main())
