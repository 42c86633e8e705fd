"""What rnnkit.cli and rnnkit.cli.inside share: argument types, the --checkpoint option,
the stderr log (no torch imported here)."""

import argparse
import sys

from rnnkit.cell_names import CELL_NAMES, is_cell_spec


def add_checkpoint_choice(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        choices=("best", "latest"),
        default="best",
        help="which checkpoint (default best)",
    )


def cell_spec(text: str) -> str:
    """A shipped cell's name or path/to/file.py:Class (checked for form here; the file is
    read when the command runs)."""
    if not is_cell_spec(text):
        raise argparse.ArgumentTypeError(
            f"unknown cell {text!r}: use one of {', '.join(CELL_NAMES)}, or a cell of your own "
            "as path/to/file.py:ClassName"
        )
    return text


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive whole number, got {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def log(message: str) -> None:
    """A progress or warning line for the user, on stderr (stdout is for results)."""
    print(message, file=sys.stderr, flush=True)
