"""Where rnnkit stands against torch.nn and its speed targets: one measurement per target, each
side by side with torch.nn in this process, written as the table that opens
docs/performance.md (between its two ``standing`` markers; the rest of the page is untouched).

    .venv/bin/python bench/standing.py --json bench/standing.json --write docs/performance.md
    .venv/bin/python bench/standing.py --only minGRU --json bench/standing.json --write ...
    .venv/bin/python bench/standing.py --from-json bench/standing.json --write docs/performance.md

``--only`` measures the named targets again and keeps the other rows of ``--json`` (each row
carries its own date); ``--from-json`` measures nothing and writes the table of a saved file.
The measurements reuse the functions of bench/speed.py, bench/cells.py and
bench/sampling_batch.py, so a row here and the row of that bench measure the same thing.
"""

import argparse
import datetime
import itertools
import json
import os
import platform
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cells
import sampling_batch
import speed
import torch

from rnnkit.engine import compiled

BEGIN = "<!-- standing: written by bench/standing.py; edit the script, not the table -->"
END = "<!-- /standing -->"
GRID = list(itertools.product((32, 64), (64, 128), (128, 256, 512), (1, 2)))  # speed.py's


@dataclass
class Target:
    name: str  # a short key for --only
    goal: str  # what is compared and the target, as the table shows it
    section: str  # the anchor of docs/performance.md's section with the detail
    measure: Callable[[int], tuple[str, bool]]  # repetitions -> (what was measured, met)


def lstm_kernel(repetitions: int) -> tuple[str, bool]:
    train, infer = speed.layer_rows(32, 128, 512, 1, repetitions, ("LSTM",), "bptt")
    return f"{train.ratio:.2f} train, {infer.ratio:.2f} infer at B=32 T=128 H=512", train.ratio <= 1


def char_model(repetitions: int) -> tuple[str, bool]:
    train, _ = speed.charlm_rows(32, 128, 512, 1, repetitions)
    return (
        f"{train.ratio:.2f} at B=32 T=128 H=512 with torch's kernel; the fold is not built",
        train.ratio <= 0.85,
    )


def gru_grid(repetitions: int) -> tuple[str, bool]:
    ratios = {}
    for batch, steps, hidden, layers in GRID:
        train, _ = speed.layer_rows(batch, steps, hidden, layers, repetitions, ("GRU",))
        ratios[train.shape] = train.ratio
    worst = max(ratios, key=ratios.get)
    above = sum(ratio > 0.85 for ratio in ratios.values())
    return (
        f"median {statistics.median(ratios.values()):.2f}, worst {ratios[worst]:.2f} ({worst}); "
        f"above 0.85 at {above} of {len(ratios)} shapes",
        above == 0,
    )


_variants: dict[str, float] = {}


def variants(repetitions: int) -> dict[str, float]:
    """speed.py's rows off the grid (proj_size, packed, cells in loops), measured once for
    the three targets that read them."""
    if not _variants:
        _variants.update({row.what: row.ratio for row in speed.variant_rows(repetitions)})
    return _variants


def projected(repetitions: int) -> tuple[str, bool]:
    ratio = variants(repetitions)["LSTM proj_size [torch's kernel] train"]
    return f"{ratio:.2f} at B=32 T=64 H=256 P=128, torch's kernel on both sides", ratio <= 1


def packed(repetitions: int) -> tuple[str, bool]:
    lstm, gru = (
        variants(repetitions)[f"{kind} packed [reference] infer"] for kind in ("LSTM", "GRU")
    )
    return f"LSTM {lstm:.2f}, GRU {gru:.2f} at B=32 T<=64 H=256", max(lstm, gru) <= 1


def cell_calls(repetitions: int) -> tuple[str, bool]:
    (ratio,) = (v for k, v in variants(repetitions).items() if k.startswith("LSTMCell x2"))
    return f"{ratio:.2f} (two float64 LSTMCells, B=97, 1,000 steps, backward)", ratio <= 1.05


def sampling(repetitions: int) -> tuple[str, bool]:
    _, float32, int8 = speed.sampling_rows(repetitions)
    return f"{int8.ratio:.2f} with int8 weights; {float32.ratio:.2f} in float32", int8.ratio <= 0.5


def several_samples(repetitions: int) -> tuple[str, bool]:
    torch.manual_seed(0)
    model = speed.CharLM(speed.VOCAB, "lstm", speed.INPUT_SIZE, 512, 2).eval()
    one, many = sampling_batch.characters_per_second(model, 300, 8, repetitions)
    return f"{many / one:.1f}x ({many:,.0f} against {one:,.0f} characters/s)", many >= 4 * one


def peak_memory(repetitions: int) -> tuple[str, bool]:
    shapes = [("char model", (32, 128, 512, 1)), ("LSTM", (64, 128, 512, 2)),
              ("GRU", (64, 128, 512, 2))]  # fmt: skip
    ratios = {kind: ours / theirs for kind, _, ours, theirs in speed.peak_memory_rows(shapes)}
    listed = ", ".join(f"{kind} {ratio:.3f}" for kind, ratio in ratios.items())
    return listed, max(ratios.values()) <= 1


def users_lstm(repetitions: int) -> tuple[str, bool]:
    x = torch.randn(128, 32, 256)
    users = cells.Recurrent(cells.UsersLSTM(), 256, 256)
    _, _, vs_torch = cells.ratio(users, torch.nn.LSTM(256, 256), x, repetitions)
    built_in = cells.make_layer("lstm", 256, 256, engine="bptt")
    _, _, vs_ours = cells.ratio(users, built_in, x, repetitions)
    return (
        f"{vs_torch:.2f}x torch.nn.LSTM; {vs_ours:.2f}x rnnkit's LSTM loop (B=32 T=128 H=256)",
        vs_torch <= 1.5 and vs_ours <= 1.2,
    )


def mingru(repetitions: int) -> tuple[str, bool]:
    ratios = {}
    gru = torch.nn.GRU(256, 256)
    for steps in (1024, 4096):
        x = torch.randn(steps, 8, 256)
        layer = cells.Recurrent(cells.CELLS["mingru"], 256, 256)
        ratios[steps] = cells.ratio(layer, gru, x, max(3, repetitions // 2))[2]
    return f"{ratios[1024]:.2f}x / {ratios[4096]:.2f}x (B=8 H=256)", max(ratios.values()) <= 0.2


def cell_sampling(repetitions: int) -> tuple[str, bool]:
    budget = cells.parameter_count("lstm", 64, 256, 65)
    ratios = {}
    for name in cells.CELLS:
        hidden = cells.hidden_size_for_budget(name, 64, 65, budget)
        ratios[name] = cells.sampling_ratio(name, hidden)[1]
    worst = max(ratios, key=ratios.get)
    over = [name for name, ratio in ratios.items() if ratio > 1.2]
    return (
        f"{min(ratios.values()):.2f}-{ratios[worst]:.2f}x, worst {worst}"
        + (f"; over 1.2x: {', '.join(over)}" if over else ""),
        not over,
    )


# the sections of docs/performance.md the rows link to (their anchors)
LOOPS = "rnnkits-own-lstm-loops-beside-torchs-kernel---engine-bptt"
GRID_SUMMARY = "summary-over-the-grid"
OFF_GRID = "off-the-grid-proj_size-packed-batches-cells-in-a-loop"
INT8 = "sampling-with-int8-weights-rnnkit-sample---weights-int8"
SEVERAL = "several-samples-at-once-rnnkit-sample---num-samples-n"
MEMORY = "peak-memory-of-a-training-step"
EVERY_CELL = "every-cell-benchcellspy"

TARGETS = [
    Target("LSTM", "rnnkit's own LSTM kernel ≤ 1.00 (layer training step)", LOOPS, lstm_kernel),
    Target(
        "char",
        "character model with the embedding folded into layer 0 ≤ 0.85 (training step)",
        GRID_SUMMARY,
        char_model,
    ),
    Target(
        "GRU", "GRU layer training step ≤ 0.85 at every shape of the grid", GRID_SUMMARY, gru_grid
    ),
    Target("proj", "`proj_size` LSTM training ≤ 1.00", OFF_GRID, projected),
    Target("packed", "packed-sequence inference ≤ 1.00", OFF_GRID, packed),
    Target(
        "cell-calls",
        "cells called in a Python loop (PyTorch's time-sequence-prediction) ≤ 1.05",
        OFF_GRID,
        cell_calls,
    ),
    Target(
        "sampling", "sampling at batch 1, 2×512, vs a torch.nn.LSTMCell loop ≤ 0.5", INT8, sampling
    ),
    Target(
        "samples",
        "`--num-samples 8` ≥ 4× the characters per second of one sample",
        SEVERAL,
        several_samples,
    ),
    Target("memory", "peak training memory ≤ 1.00", MEMORY, peak_memory),
    Target(
        "user-LSTM",
        "an LSTM written as a user's cell ≤ 1.5× torch.nn.LSTM and ≤ 1.2× rnnkit's LSTM loop",
        EVERY_CELL,
        users_lstm,
    ),
    Target("minGRU", "minGRU at T = 1024 / 4096 ≤ 0.2× torch.nn.GRU", EVERY_CELL, mingru),
    Target(
        "cell-sampling",
        "sampling at batch 1, every cell ≤ 1.2× the LSTM's",
        EVERY_CELL,
        cell_sampling,
    ),
]


def render(results: dict) -> str:
    """The block between the markers: how it was measured, then one row per target."""
    lines = [
        BEGIN,
        "",
        "Measured by `.venv/bin/python bench/standing.py --json bench/standing.json --write "
        f"docs/performance.md` (`--only NAME` for one row) on {results['machine']}, torch "
        f"{results['torch']}, rnnkit's loops: {results['loops']}; {results['repetitions']} "
        "interleaved repetitions per comparison, ratios of medians (rnnkit's time ÷ torch.nn's; "
        "below 1 rnnkit is faster). Each row has the date it was measured.",
        "",
        "| target | now | status | measured | detail |",
        "| --- | --- | --- | --- | --- |",
    ]
    by_name = {row["name"]: row for row in results["rows"]}
    for target in TARGETS:
        row = by_name.get(target.name)
        if row is None:
            lines.append(f"| {target.goal} | not measured | - | - | [section](#{target.section}) |")
            continue
        status = "met" if row["met"] else "**open**"
        repetitions = row.get("repetitions", results["repetitions"])
        date = row["date"] + (
            f" ({repetitions} repetitions)" if repetitions != results["repetitions"] else ""
        )
        lines.append(f"| {target.goal} | {row['now']} | {status} | {date} | "
                     f"[section](#{target.section}) |")  # fmt: skip
    return "\n".join([*lines, "", END])


def write_into(page: Path, block: str) -> None:
    text = page.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(
            f"{page} has no standing markers: put {BEGIN!r} and {END!r} where the table goes"
        )
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    page.write_text(before + block + after, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument(
        "--only", nargs="+", choices=[t.name for t in TARGETS], help="measure only these"
    )
    parser.add_argument("--json", type=Path, help="save the measurements here (after each row)")
    parser.add_argument(
        "--from-json", type=Path, help="measure nothing: the table of a saved --json"
    )
    parser.add_argument(
        "--write", type=Path, help="write the table into this page (between its markers)"
    )
    args = parser.parse_args()
    if args.from_json:
        results = json.loads(args.from_json.read_text())
    else:
        saved = (
            json.loads(args.json.read_text())
            if args.only and args.json and args.json.exists()
            else {}
        )
        results = {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "torch": f"{torch.__version__} ({torch.get_num_threads()} threads)",
            "loops": "C++" if compiled.loops() is not None else "Python (no compiler)",
            # the header's count is the full run's; a row measured with --only keeps its own
            "repetitions": saved.get("repetitions", args.repetitions),
            "rows": [row for row in saved.get("rows", []) if row["name"] not in args.only]
            if saved
            else [],
        }
        for target in TARGETS:
            if args.only and target.name not in args.only:
                continue
            now, met = target.measure(args.repetitions)
            row = {
                "name": target.name,
                "now": now,
                "met": bool(met),
                "date": str(datetime.date.today()),
                "repetitions": args.repetitions,
            }
            results["rows"].append(row)
            print(f"{target.goal}: {now} ({'met' if met else 'open'})", flush=True)
            if args.json:
                args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    block = render(results)
    if args.write:
        write_into(args.write, block)
        print(f"wrote the table into {args.write}")
    else:
        print(block)


if __name__ == "__main__":
    main()
