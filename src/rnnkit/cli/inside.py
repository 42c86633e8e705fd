"""The command-line side of rnnkit.inside: `gradflow`, `longrange`, `viz`, `cells`.

``add_commands`` adds their parsers to ``rnnkit``'s; ``COMMANDS`` maps each name to the
function that runs it. Like rnnkit.cli, only argument parsing happens at import time: torch
and the tools are imported inside the functions, so `rnnkit --help` stays instant.
"""

from pathlib import Path

from rnnkit.cell_names import CELL_NAMES
from rnnkit.cli.common import (
    add_checkpoint_choice,
    cell_spec,
    log,
    positive_float,
    positive_int,
)


def add_cells_argument(parser, nargs: str, what: str, extra: str = "") -> None:
    """--cells: shipped cells by name or path/to/file.py:Class, rnn lstm gru by default."""
    parser.add_argument(
        "--cells",
        nargs=nargs,
        type=cell_spec,
        default=["rnn", "lstm", "gru"],
        help=f"{what}: any of {', '.join(CELL_NAMES)}, or path/to/file.py:Class (default: rnn "
        f"lstm gru{extra})",
    )


def add_commands(commands) -> None:
    gradflow = commands.add_parser(
        "gradflow",
        help="how a loss at the last step reaches earlier steps: RNN vs LSTM vs GRU",
        description="Measure ‖∂L/∂h_t‖ for a loss at the last step against the distance to it, "
        "per layer, for fresh layers of each cell type (and the vanilla RNN at chosen spectral "
        "radii of W_hh) or for trained runs; print the decay per step and the effect of "
        "gradient clipping, and draw one log-scale PNG.",
    )
    gradflow.add_argument(
        "run_dirs", type=Path, nargs="*", metavar="RUN_DIR", help="trained runs to measure too"
    )
    add_cells_argument(gradflow, "*", "fresh cells to measure", "; none with a bare --cells")
    gradflow.add_argument(
        "--spectral-radius",
        type=positive_float,
        nargs="*",
        default=[0.5, 0.9, 1.0, 1.1, 1.5],
        help="vanilla RNNs with W_hh scaled to these spectral radii (default 0.5 0.9 1 1.1 1.5)",
    )
    gradflow.add_argument(
        "--input-scale",
        type=positive_float,
        default=1.0,
        help="standard deviation of the fresh layers' random inputs (default 1)",
    )
    gradflow.add_argument("--hidden-size", type=positive_int, default=64)
    gradflow.add_argument("--num-layers", type=positive_int, default=1)
    gradflow.add_argument(
        "--steps", type=positive_int, default=100, help="sequence length (default 100)"
    )
    gradflow.add_argument("--batch-size", type=positive_int, default=16)
    gradflow.add_argument(
        "--clip-norm", type=positive_float, default=1.0, help="clipping to show (default 1.0)"
    )
    gradflow.add_argument("--seed", type=int, default=0)
    gradflow.add_argument(
        "--out", type=Path, default=Path("gradflow.png"), help="the PNG (default gradflow.png)"
    )

    longrange = commands.add_parser(
        "longrange",
        help="the adding and copy-memory problems: which cell remembers over which delay",
        description="Train each cell type with the same parameter and time budget on the adding "
        "and copy-memory problems at each delay; print the table (markdown), write "
        "longrange.json and longrange.png.",
    )
    longrange.add_argument(
        "--tasks", nargs="+", choices=("adding", "copy"), default=["adding", "copy"]
    )
    add_cells_argument(longrange, "+", "cells to compare")
    longrange.add_argument(
        "--delays",
        nargs="+",
        type=positive_int,
        default=[10, 25, 50, 100, 200],
        help="sequence length of the adding problem, blanks between showing and recalling in "
        "the copy problem (default 10 25 50 100 200)",
    )
    longrange.add_argument(
        "--time-budget",
        type=positive_float,
        default=0.5,
        metavar="MINUTES",
        help="minutes of training per task, delay and cell, as for every --time-budget "
        "(default 0.5: 30 seconds)",
    )
    longrange.add_argument(
        "--parameters",
        type=positive_int,
        default=20_000,
        help="parameter budget of every model (default 20000)",
    )
    longrange.add_argument("--seed", type=int, default=0)

    viz = commands.add_parser(
        "viz",
        help="an HTML page of a text coloured by a cell's activation",
        description="Write one self-contained HTML page (no network, no external script): the "
        "text coloured by a chosen cell's activation, the value on hover, and a picker for "
        "the most interesting cells.",
    )
    viz.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    viz.add_argument("--text", type=Path, required=True, metavar="FILE", help="the text to read")
    viz.add_argument(
        "--cell",
        action="append",
        default=None,
        metavar="LAYER:CELL",
        help="a cell to show (repeatable; a bare number means layer 0); default: the most "
        "interesting ones",
    )
    viz.add_argument(
        "--value",
        choices=("cell", "hidden"),
        default=None,
        help="tanh(c_t) (LSTM, the default) or h_t (the default for RNN and GRU)",
    )
    viz.add_argument("--out", type=Path, default=Path("cells.html"), help="default cells.html")
    add_checkpoint_choice(viz)

    cells = commands.add_parser(
        "cells",
        help="rank every cell by how well it tracks a feature of the text",
        description="Rank every cell by ROC-AUC (binary features) or |correlation| (numeric "
        "ones) between its activation and the feature, and print the top cells.",
    )
    cells.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    cells.add_argument("--text", type=Path, required=True, metavar="FILE", help="the text to read")
    cells.add_argument(
        "--feature",
        required=True,
        choices=("quotes", "comment", "brackets", "line-position", "indent"),
    )
    cells.add_argument("--value", choices=("cell", "hidden"), default=None)
    cells.add_argument("--top", type=positive_int, default=10, help="cells to print (default 10)")
    add_checkpoint_choice(cells)
    longrange.add_argument(
        "--out", type=Path, default=Path("longrange"), help="folder for the JSON and the PNG"
    )


def run_gradflow(args) -> int:
    from rnnkit.errors import UsageError
    from rnnkit.inside import gradflow

    if args.steps < 3:
        raise UsageError(f"--steps must be at least 3 to fit a decay, got {args.steps}")
    flows = gradflow.fresh_flows(
        args.cells,
        args.spectral_radius,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        steps=args.steps,
        batch=args.batch_size,
        seed=args.seed,
        input_scale=args.input_scale,
    )
    for run_dir in args.run_dirs:
        flows.append(gradflow.trained_flow(run_dir, args.steps, args.batch_size, args.seed))
    if not flows:
        raise UsageError("nothing to measure: name --cells, --spectral-radius or a RUN_DIR")
    print(gradflow.format_report(flows, args.clip_norm))
    gradflow.plot(flows, args.clip_norm, args.out)
    log(f"wrote {args.out}")
    return 0


def run_longrange(args) -> int:
    import json

    from rnnkit.errors import UsageError
    from rnnkit.inside import longrange

    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file; give a folder")
    args.out.mkdir(parents=True, exist_ok=True)
    results = longrange.run_grid(
        args.tasks,
        args.cells,
        args.delays,
        args.time_budget * 60,
        args.parameters,
        args.seed,
        log,
    )
    print(longrange.format_table(results, args.cells))
    (args.out / "longrange.json").write_text(json.dumps(results, indent=1) + "\n")
    longrange.plot(results, args.out / "longrange.png")
    log(f"wrote {args.out / 'longrange.json'} and {args.out / 'longrange.png'}")
    return 0


def _read_activations(args):
    from rnnkit.inside.activations import activations, read_text
    from rnnkit.training.run import load_trained_model

    model, _, vocabulary, path = load_trained_model(args.run_dir, args.checkpoint, warn=log)
    text = read_text(args.text)
    value = args.value or ("cell" if "c" in model.rnn.cell.states else "hidden")
    return text, activations(model, vocabulary, text, value), value, path


def run_viz(args) -> int:
    from rnnkit.errors import UsageError
    from rnnkit.inside import viz

    text, values, value, path = _read_activations(args)
    if args.cell:
        chosen = []
        for spec in args.cell:
            layer, _, cell = spec.rpartition(":")
            try:
                chosen.append((int(layer or 0), int(cell), "chosen"))
            except ValueError:
                raise UsageError(
                    f"--cell {spec!r}: give LAYER:CELL or CELL, e.g. --cell 0:17"
                ) from None
    else:
        chosen = viz.interesting_cells(values, text)
    page = viz.render(text, values, chosen, f"{args.run_dir.name}: {args.text.name}", value)
    args.out.write_text(page, encoding="utf-8")
    log(f"wrote {args.out} ({len(chosen)} cells; checkpoint {path})")
    return 0


def run_cells(args) -> int:
    from rnnkit.inside.cell_ranking import format_ranking, rank_cells
    from rnnkit.inside.features import feature_values

    text, values, value, _ = _read_activations(args)
    ranking = rank_cells(values, feature_values(text, args.feature), args.feature)
    print(f"{args.feature}: {len(ranking)} cells ranked, value {value}, {len(text):,} characters")
    print(format_ranking(ranking, args.feature, args.top))
    return 0


COMMANDS = {
    "gradflow": run_gradflow,
    "longrange": run_longrange,
    "viz": run_viz,
    "cells": run_cells,
}
