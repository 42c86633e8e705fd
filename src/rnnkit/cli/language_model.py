"""`rnnkit train`, `sample` and `eval`: the character language model's commands.

Each parses nothing itself (cli/parser.py builds the parsers with `add_commands`) and calls
the library: training/language_model.py, generation/sampling.py, training/evaluate.py.
"""

import sys
from pathlib import Path

from rnnkit.cli.common import add_checkpoint_choice, log, positive_int


def add_commands(commands) -> None:
    from rnnkit.config_fields import add_arguments
    from rnnkit.training.config import TrainConfig

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
    add_arguments(train, TrainConfig)

    sample = commands.add_parser(
        "sample",
        help="generate text from a trained run",
        description="Stream generated text to stdout.",
    )
    sample.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    sample.add_argument(
        "--length", type=positive_int, default=500, help="characters to generate (default 500)"
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
        "--num-samples", type=positive_int, default=1, help="independent samples (default 1)"
    )
    sample.add_argument(
        "--weights",
        choices=("float32", "int8"),
        default="float32",
        help="read the weights as trained (float32) or as int8: a quarter of the bytes per "
        "character, faster at batch 1, at a cost in nats/char that `rnnkit eval --weights int8` "
        "measures (default float32)",
    )
    add_checkpoint_choice(sample)

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
    evaluate.add_argument(
        "--weights",
        choices=("float32", "int8"),
        default="float32",
        help="score the model as trained (float32) or as `rnnkit sample --weights int8` runs "
        "it, one character at a time with int8 weights (default float32)",
    )
    add_checkpoint_choice(evaluate)


def run_train(args) -> int:
    from dataclasses import fields

    from rnnkit.config_fields import read_toml
    from rnnkit.training.config import TrainConfig, build_config
    from rnnkit.training.language_model import train
    from rnnkit.training.run import read_run
    from rnnkit.training.settings import resume_target
    from rnnkit.training.trainer import quiet

    resume = resume_target(args.resume, args.out)
    spent = 0.0
    if resume is not None:
        given = read_toml(Path(args.config), TrainConfig) if args.config else {}
        given |= {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
        # train() says what changed (and refuses another architecture)
        config = read_run(resume)[0].resumed(resume, given, quiet)
    else:
        config, spent = fit_budget(build_config(args, args.config), args)
    out = resume or args.out or Path("runs/charlm")
    result = train(config, out, resume=resume is not None, log=log, budget_spent=spent)
    return result.exit_code


def fit_budget(config, args):
    """A budgeted run's size from this machine's speed (training/budget.py), said in the log
    with the budget's other defaults; (config, seconds the measuring took)."""
    from dataclasses import fields

    from rnnkit.config_fields import read_toml
    from rnnkit.training.budget import fit_to_machine
    from rnnkit.training.config import TrainConfig

    given = {f.name for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}
    if args.config:
        given |= set(read_toml(Path(args.config), TrainConfig))
    config, choice = fit_to_machine(config, given)
    if choice is not None:
        log(f"--time-budget {config.time_budget:g}: {choice.describe()}")
        config.validate()
    log_budget_defaults(config, args)  # the budget's other defaults, as they stand
    return config, 0.0 if choice is None else choice.probe_seconds


def log_budget_defaults(config, args) -> None:
    """Say which defaults the time budget chose, so that a run's size is never a surprise."""
    from rnnkit.training.config import as_flags, budget_defaults

    chosen = {
        name: value
        for name, value in budget_defaults(config.time_budget).items()
        if getattr(config, name) == value and getattr(args, name, None) is None
    }
    if chosen:
        budget = f"{config.time_budget:g}-minute budget"
        log(f"defaults for a {budget}: {as_flags(chosen)} (a flag overrides each)")


def run_sample(args) -> int:
    from rnnkit.generation.sampling import check_sampling, generate, generate_many
    from rnnkit.training.run import load_trained_model

    model, _, vocabulary, _ = load_trained_model(args.run_dir, args.checkpoint, warn=log)
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
    seeds = [None if args.seed is None else args.seed + index for index in range(args.num_samples)]
    settings = (args.temperature, args.top_k, args.top_p)
    weights = args.weights
    if args.num_samples == 1:  # streamed, character by character
        writer.write(vocabulary.decode(prime))
        for symbol in generate(model, prime, args.length, *settings, seeds[0], weights=weights):
            writer.write(vocabulary.decode([symbol]))
            writer.flush()
    else:  # all rows at once (about the cost of one), written when they are done
        rows = [list(prime) for _ in seeds]
        for symbols in generate_many(model, prime, args.length, seeds, *settings, weights=weights):
            for row, symbol in zip(rows, symbols.tolist(), strict=True):
                row.append(symbol)
        separator = b"\n\n" if vocabulary.encoding == "bytes" else "\n\n"
        for index, row in enumerate(rows):
            writer.write((separator if index else separator[:0]) + vocabulary.decode(row))
    writer.write(b"\n" if vocabulary.encoding == "bytes" else "\n")
    writer.flush()
    return 0


def run_eval(args) -> int:
    from rnnkit.data.batches import contiguous_split
    from rnnkit.data.text import load_corpus
    from rnnkit.errors import UsageError
    from rnnkit.training.evaluate import evaluate
    from rnnkit.training.run import load_trained_model, run_corpus

    model, config, vocabulary, path = load_trained_model(args.run_dir, args.checkpoint, warn=log)
    if args.data is not None:
        import tempfile

        cache = Path(tempfile.mkdtemp(prefix="rnnkit-eval-"))
        corpus = load_corpus(args.data, vocabulary.encoding, cache, vocabulary)
        split = contiguous_split(len(corpus.ids), config.val_fraction, config.test_fraction)
        split_name = args.split or "all"
    else:
        corpus, split = run_corpus(args.run_dir, config, vocabulary)
        split_name = args.split or "val"
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
    if args.weights == "int8":
        from rnnkit.generation.sampling import stepper_for
        from rnnkit.training.evaluate import evaluate_stepped

        stepper = stepper_for(model, "int8")
        result = evaluate_stepped(stepper, corpus.ids[start:end], 64, config.seq_len)
    else:
        result = evaluate(model, corpus.ids[start:end], 64, config.seq_len)
    print(
        f"{split_name}: {result.loss:.4f} nats/char | {result.bits_per_character:.4f} bits/char | "
        f"perplexity {result.perplexity:.3f} | {result.characters:,} characters | {path}"
        + (" | int8 weights" if args.weights == "int8" else "")
    )
    return 0


COMMANDS = {"train": run_train, "sample": run_sample, "eval": run_eval}
