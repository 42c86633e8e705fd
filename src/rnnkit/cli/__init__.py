"""The `rnnkit` command line: parses arguments and calls the library; nothing else.

    parser.py   the `rnnkit` command and its language-model subcommands (train, sample, eval)
    tasks.py    `rnnkit task NAME train|eval|predict`
    inside.py   `rnnkit gradflow | longrange | cells | viz`
    explore.py  `rnnkit explore`: the web app of rnnkit.explorer
    demo.py     `rnnkit demo`
    common.py   what they share: argument types, --checkpoint, the stderr log

Nothing here imports torch at import time, so `rnnkit --help` is instant.
"""

from rnnkit.cli.parser import main

__all__ = ["main"]
