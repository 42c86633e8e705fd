"""The exceptions rnnkit raises for bad arguments and bad input.

torch.nn raises ``ValueError`` for some shape problems and ``RuntimeError`` for others (and an
``IndexError`` or ``AttributeError`` for a few it never checks). rnnkit checks every one of them
up front and raises an :class:`InputShapeError`, which is both a ``ValueError`` and a
``RuntimeError``: code written against torch.nn's exception types keeps working, and the message
always says what was expected, what was given and how to fix it.
"""


class InputShapeError(ValueError, RuntimeError):
    """An input or state tensor has the wrong number of dimensions, size, dtype or device."""


class UsageError(Exception):
    """Bad input from the user (a file, a flag, a run directory): the command line prints the
    message on one line and exits with code 2. The message names the problem and the fix."""
