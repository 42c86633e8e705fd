"""The `rnnkit` command line: the entry point. Each family of commands (cli/language_model.py,
inside.py, tasks.py, explore.py) adds its parsers and the functions that run them; `demo` is
here. Parses arguments and calls the library; nothing else.

Heavy imports (torch) happen inside the subcommands, so `rnnkit --help` is instant. Bad input
gets one line on stderr and exit code 2 (never a traceback).
"""

import argparse
import os
import sys

from rnnkit.cli import explore as explore_commands
from rnnkit.cli import inside as inside_commands
from rnnkit.cli import language_model as language_model_commands
from rnnkit.cli import tasks as task_commands
from rnnkit.cli.common import positive_int


def build_parser() -> argparse.ArgumentParser:

    parser = argparse.ArgumentParser(
        prog="rnnkit",
        description="Recurrent neural networks (RNN, LSTM, GRU) written from their gate equations.",
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    language_model_commands.add_commands(commands)

    demo = commands.add_parser(
        "demo",
        help="show the layers equal to torch.nn, then train each beside its torch.nn twin",
        description="Part 1: rnnkit's RNN, LSTM and GRU against torch.nn with the same weights. "
        "Part 2: each is trained beside its torch.nn twin on a memory task.",
    )
    demo.add_argument(
        "--delay",
        type=positive_int,
        default=None,
        help="distractors between the symbol and the question (default 10)",
    )
    demo.add_argument(
        "--steps", type=positive_int, default=None, help="training steps per cell (default 300)"
    )
    demo.add_argument("--seed", type=int, default=None, help="random seed (default 0)")

    inside_commands.add_commands(commands)
    task_commands.add_commands(commands)
    explore_commands.add_commands(commands)
    return parser


def _version() -> str:
    from rnnkit import __version__

    return f"rnnkit {__version__}"


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
    except BrokenPipeError:
        # The reader left (`rnnkit sample RUN | head`): stop quietly, as other Unix tools do.
        # Python would otherwise complain again while flushing stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command killed by it


def run_demo(args) -> int:
    from dataclasses import replace

    from rnnkit.cli.demo import DemoConfig, run_demo

    overrides = {k: v for k, v in vars(args).items() if k != "command" and v is not None}
    run_demo(replace(DemoConfig(), **overrides))
    return 0


COMMANDS = {
    **language_model_commands.COMMANDS,
    "demo": run_demo,
    **inside_commands.COMMANDS,
    **task_commands.COMMANDS,
    **explore_commands.COMMANDS,
}


if __name__ == "__main__":
    sys.exit(main())
