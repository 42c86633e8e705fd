"""How much the layout of a full-pass evaluation moves its figure: one trained run's validation
loss read as 1 stream (the reference) and as several segments side by side, with and without the
warm-up context each segment reads before its scored part.

    .venv/bin/python bench/eval_context.py RUN_DIR          # a few seconds per row on 2 cores

The table in docs/experiments/2026-11-29-language-model.md ("evaluation with context") came
from this script.
"""

import argparse
import time
from pathlib import Path

from rnnkit.data.batches import contiguous_split
from rnnkit.data.corpora import corpus_path
from rnnkit.data.text import load_corpus
from rnnkit.training.evaluate import evaluate
from rnnkit.training.run import load_trained_model

LAYOUTS = [(64, 0), (16, 0), (4, 0), (1, 0), (64, None)]  # (segments, context; None: seq_len)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a run directory of `rnnkit train`")
    args = parser.parse_args()
    model, config, vocabulary, checkpoint = load_trained_model(args.run_dir, None, warn=print)
    source = corpus_path(config.data, args.run_dir / "data")
    corpus = load_corpus(source, vocabulary.encoding, args.run_dir / "data", vocabulary)
    start, end = contiguous_split(len(corpus.ids), config.val_fraction, config.test_fraction).val
    ids = corpus.ids[start:end]
    print(f"{checkpoint}: validation, {end - start - 1:,} predictions")
    print("| segments | context | validation | seconds |")
    print("| ---: | --- | ---: | ---: |")
    for segments, context in LAYOUTS:
        began = time.perf_counter()
        loss = evaluate(model, ids, segments, config.seq_len, context=context).loss
        seconds = time.perf_counter() - began
        shown = f"{config.seq_len} characters" if context is None else "none"
        print(f"| {segments} | {shown} | {loss:.4f} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
