"""The curves `--time-budget` chooses a model by, from the budget sweeps' measured runs.

    .venv/bin/python bench/budget_curves.py   # docs/experiments/*budget-sweep*.jsonl ->
                                             # src/rnnkit/training/budget_curves.json

Each sweep row is one `rnnkit train --max-steps N` at one candidate size (bench/budget_sweep.py):
its validation loss after N steps. The file groups them by corpus and size, sorted by steps,
with the corpus's length in characters, which rnnkit.training.budget reads.
"""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "docs" / "experiments").glob("*budget-sweep*.jsonl"))
TARGET = ROOT / "src" / "rnnkit" / "training" / "budget_curves.json"
CHARACTERS = {
    "tinyshakespeare": 1_115_394,
    "python-stdlib": 8_000_000,
}  # the whole texts (stdlib: at most)


def main() -> None:
    curves: dict[str, dict] = {}
    for source in SOURCES:
        for line in source.read_text().splitlines():
            row = json.loads(line)
            corpus = curves.setdefault(
                row["corpus"], {"characters": CHARACTERS[row["corpus"]], "sizes": {}}
            )
            corpus["sizes"].setdefault(row["size"], []).append([row["steps"], row["val_loss"]])
    for corpus in curves.values():
        for points in corpus["sizes"].values():
            points.sort()
    document = {"sources": [str(s.relative_to(ROOT)) for s in SOURCES], "corpora": curves}
    TARGET.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {TARGET.relative_to(ROOT)} from {len(SOURCES)} sweep file(s)")


if __name__ == "__main__":
    main()
