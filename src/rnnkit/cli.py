"""The `rnnkit` command line: parses arguments and calls the library; nothing else.

Heavy imports (torch) happen inside the subcommands, so `rnnkit --help` is instant. Bad input
gets one line on stderr and exit code 2 (never a traceback).
"""

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    from rnnkit.training.config import add_arguments

    parser = argparse.ArgumentParser(
        prog="rnnkit",
        description="Recurrent neural networks (RNN, LSTM, GRU) written from their gate equations.",
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train a character-level language model",
        description="Train a character-level language model (defaults < --config < flags).",
    )
    train.add_argument(
        "--out", type=Path, default=None, help="run directory (default: runs/charlm)"
    )
    train.add_argument(
        "--resume", type=Path, default=None, metavar="RUN_DIR", help="continue this run"
    )
    train.add_argument(
        "--config",
        default=None,
        metavar="FILE.toml",
        help="settings file (keys = flag names with underscores)",
    )
    add_arguments(train)

    sample = commands.add_parser(
        "sample",
        help="generate text from a trained run",
        description="Stream generated text to stdout.",
    )
    sample.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    sample.add_argument(
        "--length", type=_positive_int, default=500, help="characters to generate (default 500)"
    )
    sample.add_argument(
        "--temperature",
        type=float,
        default=0.8,
        help="0 = greedy; higher = more random (default 0.8)",
    )
    sample.add_argument(
        "--top-k", type=int, default=None, help="sample only among the K most likely characters"
    )
    sample.add_argument(
        "--top-p",
        type=float,
        default=None,
        help="sample only from the smallest set with probability mass >= P",
    )
    primes = sample.add_mutually_exclusive_group()
    primes.add_argument("--prime", default=None, help="text the sample continues")
    primes.add_argument(
        "--prime-file", type=Path, default=None, help="file whose text the sample continues"
    )
    sample.add_argument("--seed", type=int, default=None, help="random seed (same seed, same text)")
    sample.add_argument(
        "--num-samples", type=_positive_int, default=1, help="independent samples (default 1)"
    )
    _add_checkpoint_choice(sample)

    evaluate = commands.add_parser(
        "eval",
        help="full-pass loss of a trained run",
        description="Loss in nats/char, bits/char and perplexity over every character of a split.",
    )
    evaluate.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    evaluate.add_argument(
        "--data", type=Path, default=None, help="another text file (default: the run's own text)"
    )
    evaluate.add_argument(
        "--split",
        choices=("train", "val", "test", "all"),
        default=None,
        help="part of the text (default val; all with --data)",
    )
    _add_checkpoint_choice(evaluate)

    demo = commands.add_parser(
        "demo",
        help="show the layers equal to torch.nn, then train each beside its torch.nn twin",
        description="Part 1: rnnkit's RNN, LSTM and GRU against torch.nn with the same weights. "
        "Part 2: each is trained beside its torch.nn twin on a memory task.",
    )
    demo.add_argument(
        "--delay",
        type=_positive_int,
        default=None,
        help="distractors between the symbol and the question (default 10)",
    )
    demo.add_argument(
        "--steps", type=_positive_int, default=None, help="training steps per cell (default 300)"
    )
    demo.add_argument("--seed", type=int, default=None, help="random seed (default 0)")

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
    gradflow.add_argument(
        "--cells",
        nargs="*",
        choices=("rnn", "lstm", "gru"),
        default=["rnn", "lstm", "gru"],
        help="fresh cell types to measure (default: all three; none with a bare --cells)",
    )
    gradflow.add_argument(
        "--spectral-radius",
        type=_positive_float,
        nargs="*",
        default=[0.5, 0.9, 1.0, 1.1, 1.5],
        help="vanilla RNNs with W_hh scaled to these spectral radii (default 0.5 0.9 1 1.1 1.5)",
    )
    gradflow.add_argument(
        "--input-scale",
        type=_positive_float,
        default=1.0,
        help="standard deviation of the fresh layers' random inputs (default 1)",
    )
    gradflow.add_argument("--hidden-size", type=_positive_int, default=64)
    gradflow.add_argument("--num-layers", type=_positive_int, default=1)
    gradflow.add_argument(
        "--steps", type=_positive_int, default=100, help="sequence length (default 100)"
    )
    gradflow.add_argument("--batch-size", type=_positive_int, default=16)
    gradflow.add_argument(
        "--clip-norm", type=_positive_float, default=1.0, help="clipping to show (default 1.0)"
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
    longrange.add_argument(
        "--cells", nargs="+", choices=("rnn", "lstm", "gru"), default=["rnn", "lstm", "gru"]
    )
    longrange.add_argument(
        "--delays",
        nargs="+",
        type=_positive_int,
        default=[10, 25, 50, 100, 200],
        help="sequence length of the adding problem, blanks between showing and recalling in "
        "the copy problem (default 10 25 50 100 200)",
    )
    longrange.add_argument(
        "--time-budget",
        type=_positive_float,
        default=30.0,
        help="seconds of training per task, delay and cell (default 30)",
    )
    longrange.add_argument(
        "--parameters",
        type=_positive_int,
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
    _add_checkpoint_choice(viz)

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
    cells.add_argument("--top", type=_positive_int, default=10, help="cells to print (default 10)")
    _add_checkpoint_choice(cells)
    longrange.add_argument(
        "--out", type=Path, default=Path("longrange"), help="folder for the JSON and the PNG"
    )
    return parser


def _add_checkpoint_choice(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        choices=("best", "latest"),
        default="best",
        help="which checkpoint (default best)",
    )


def _version() -> str:
    from rnnkit import __version__

    return f"rnnkit {__version__}"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive whole number, got {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    from rnnkit.errors import UsageError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from rnnkit.memory import reuse_large_allocations

    reuse_large_allocations()  # fewer page faults per training step (see rnnkit/memory.py)
    try:
        return COMMANDS[args.command](args)
    except UsageError as error:
        print(f"rnnkit {args.command}: error: {error}", file=sys.stderr)
        return getattr(error, "exit_code", 2)
    except KeyboardInterrupt:
        print(f"rnnkit {args.command}: aborted", file=sys.stderr)
        return 130


def run_train(args) -> int:
    from dataclasses import fields

    from rnnkit.training.config import TrainConfig, build_config
    from rnnkit.training.loop import train
    from rnnkit.training.run import read_run

    if args.resume is not None:
        if args.out is not None and args.out != args.resume:
            from rnnkit.errors import UsageError

            raise UsageError("give either --resume RUN_DIR or --out DIR, not both")
        saved, _ = read_run(args.resume)
        for spec in fields(TrainConfig):  # the saved settings, unless given again
            if getattr(args, spec.name) is None:
                setattr(args, spec.name, getattr(saved, spec.name))
    config = build_config(args, args.config)
    out = args.resume or args.out or Path("runs/charlm")
    result = train(config, out, resume=args.resume is not None, log=_log)
    return result.exit_code


def run_sample(args) -> int:
    from rnnkit.generation import check_sampling, generate
    from rnnkit.training.run import load_trained_model

    model, _, vocabulary, _ = load_trained_model(args.run_dir, args.checkpoint, warn=_log)
    check_sampling(args.temperature, args.top_k, args.top_p, len(vocabulary))
    if args.prime_file is not None:
        if not args.prime_file.is_file():
            from rnnkit.errors import UsageError

            raise UsageError(f"{args.prime_file}: no such file")
        prime_text = (
            args.prime_file.read_bytes()
            if vocabulary.encoding == "bytes"
            else args.prime_file.read_text(encoding="utf-8")
        )
    elif args.prime is not None:
        prime_text = args.prime
    else:
        prime_text = (
            "\n"
            if vocabulary.encoding == "bytes" or "\n" in vocabulary.symbols
            else vocabulary.decode([0])
        )
    prime = vocabulary.encode(prime_text).tolist()
    writer = sys.stdout.buffer if vocabulary.encoding == "bytes" else sys.stdout
    for index in range(args.num_samples):
        if index:
            writer.write(b"\n\n" if vocabulary.encoding == "bytes" else "\n\n")
        writer.write(vocabulary.decode(prime))
        seed = None if args.seed is None else args.seed + index
        for symbol in generate(
            model, prime, args.length, args.temperature, args.top_k, args.top_p, seed
        ):
            writer.write(vocabulary.decode([symbol]))
            writer.flush()
    writer.write(b"\n" if vocabulary.encoding == "bytes" else "\n")
    writer.flush()
    return 0


def run_eval(args) -> int:
    from rnnkit.data.batches import contiguous_split
    from rnnkit.data.corpora import corpus_path
    from rnnkit.data.text import load_corpus
    from rnnkit.errors import UsageError
    from rnnkit.training.evaluate import evaluate
    from rnnkit.training.run import load_trained_model

    model, config, vocabulary, path = load_trained_model(args.run_dir, args.checkpoint, warn=_log)
    if args.data is not None:
        import tempfile

        cache = Path(tempfile.mkdtemp(prefix="rnnkit-eval-"))
        corpus = load_corpus(args.data, vocabulary.encoding, cache, vocabulary)
        split_name = args.split or "all"
    else:
        source = corpus_path(config.data, args.run_dir / "data")
        corpus = load_corpus(source, vocabulary.encoding, args.run_dir / "data", vocabulary)
        split_name = args.split or "val"
    split = contiguous_split(len(corpus.ids), config.val_fraction, config.test_fraction)
    ranges = {
        "train": split.train,
        "val": split.val,
        "test": split.test,
        "all": (0, len(corpus.ids)),
    }
    if ranges[split_name] is None:
        raise UsageError(
            "this run has no test split (it trained with --test-fraction 0): evaluate --split val, "
            "or another file with --data FILE"
        )
    start, end = ranges[split_name]
    result = evaluate(model, corpus.ids[start:end], 64, config.seq_len)
    print(
        f"{split_name}: {result.loss:.4f} nats/char | {result.bits_per_character:.4f} bits/char | "
        f"perplexity {result.perplexity:.3f} | {result.characters:,} characters | {path}"
    )
    return 0


def run_demo(args) -> int:
    from dataclasses import replace

    from rnnkit.demo import DemoConfig, run_demo

    overrides = {k: v for k, v in vars(args).items() if k != "command" and v is not None}
    run_demo(replace(DemoConfig(), **overrides))
    return 0


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
    _log(f"wrote {args.out}")
    return 0


def run_longrange(args) -> int:
    import json

    from rnnkit.errors import UsageError
    from rnnkit.inside import longrange

    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file; give a folder")
    args.out.mkdir(parents=True, exist_ok=True)
    results = longrange.run_grid(
        args.tasks, args.cells, args.delays, args.time_budget, args.parameters, args.seed, _log
    )
    print(longrange.format_table(results, args.cells))
    (args.out / "longrange.json").write_text(json.dumps(results, indent=1) + "\n")
    longrange.plot(results, args.out / "longrange.png")
    _log(f"wrote {args.out / 'longrange.json'} and {args.out / 'longrange.png'}")
    return 0


def _read_activations(args):
    from rnnkit.inside.activations import activations, read_text
    from rnnkit.training.run import load_trained_model

    model, _, vocabulary, path = load_trained_model(args.run_dir, args.checkpoint, warn=_log)
    text = read_text(args.text)
    value = args.value or ("cell" if model.rnn.kind == "LSTM" else "hidden")
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
    _log(f"wrote {args.out} ({len(chosen)} cells; checkpoint {path})")
    return 0


def run_cells(args) -> int:
    from rnnkit.inside.cells import format_ranking, rank_cells
    from rnnkit.inside.features import feature_values

    text, values, value, _ = _read_activations(args)
    ranking = rank_cells(values, feature_values(text, args.feature), args.feature)
    print(f"{args.feature}: {len(ranking)} cells ranked, value {value}, {len(text):,} characters")
    print(format_ranking(ranking, args.feature, args.top))
    return 0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


COMMANDS = {
    "train": run_train,
    "sample": run_sample,
    "eval": run_eval,
    "demo": run_demo,
    "gradflow": run_gradflow,
    "longrange": run_longrange,
    "viz": run_viz,
    "cells": run_cells,
}


if __name__ == "__main__":
    sys.exit(main())
