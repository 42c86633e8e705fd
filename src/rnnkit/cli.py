"""The `rnnkit` command line: parses arguments and calls the library; nothing else.

Heavy imports (torch) happen inside the subcommands, so `rnnkit --help` is instant.
"""

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnkit",
        description="Recurrent neural networks (RNN, LSTM, GRU) written from their gate equations.",
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
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
    return parser


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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "demo":
        from dataclasses import replace

        from rnnkit.demo import DemoConfig, run_demo

        overrides = {k: v for k, v in vars(args).items() if k != "command" and v is not None}
        run_demo(replace(DemoConfig(), **overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main())
