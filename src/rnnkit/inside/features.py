"""Features of a text, one value per character, that a cell of a character model may track.

Each feature is the value *after reading* the character at that position, matching the state
h_t after reading character t:

    quotes         1 inside a string literal (the quote characters that open and close it
                   included), else 0. A Python-style scan: ' and " strings, triple-quoted
                   strings, backslash escapes, and # comments (a quote inside a comment opens
                   nothing).
    comment        1 inside a # comment (outside strings) up to the end of its line.
    brackets       nesting depth of ( [ { outside strings and comments (never below 0).
    line-position  the column of the character: 0 for the first character of a line; a
                   newline has the column after its line's last character.
    indent         the number of leading spaces of the current line.

Binary features (quotes, comment) are scored by ROC-AUC, numeric ones by correlation
(rnnkit.inside.cell_ranking).
"""

import numpy as np

BINARY = ("quotes", "comment")
NUMERIC = ("brackets", "line-position", "indent")
FEATURES = BINARY + NUMERIC


def feature_values(text: str, name: str) -> np.ndarray:
    """One float per character of ``text``."""
    if name not in FEATURES:
        raise ValueError(f"unknown feature {name!r}: use one of {', '.join(FEATURES)}")
    if name in ("quotes", "comment", "brackets"):
        return _python_scan(text)[name]
    if name == "line-position":
        return _line_positions(text)
    return _indents(text)


def _python_scan(text: str) -> dict[str, np.ndarray]:
    quotes = np.zeros(len(text), dtype=np.float64)
    comment = np.zeros(len(text), dtype=np.float64)
    brackets = np.zeros(len(text), dtype=np.float64)
    depth = 0
    delimiter = ""  # the quote that opened the current string: ', ", ''' or """; "" outside
    in_comment = False
    i = 0
    while i < len(text):
        char = text[i]
        width = 1
        if delimiter:
            quotes[i] = 1
            if char == "\\":
                width = 2  # the escaped character belongs to the string
            elif text.startswith(delimiter, i):
                width = len(delimiter)
                delimiter = ""
            elif char == "\n" and len(delimiter) == 1:
                delimiter = ""  # an unterminated one-line string ends with its line
        elif in_comment:
            comment[i] = 1
            if char == "\n":
                in_comment = False
        elif char == "#":
            in_comment = True
            comment[i] = 1
        elif char in "'\"":
            delimiter = char * 3 if text.startswith(char * 3, i) else char
            width = len(delimiter)
            quotes[i : i + width] = 1
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(0, depth - 1)
        end = min(i + width, len(text))
        if delimiter or (width > 1 and quotes[i]):
            quotes[i:end] = 1
        brackets[i:end] = depth
        i = end
    return {"quotes": quotes, "comment": comment, "brackets": brackets}


def _line_positions(text: str) -> np.ndarray:
    positions = np.zeros(len(text), dtype=np.float64)
    column = 0
    for i, char in enumerate(text):
        positions[i] = column
        column = 0 if char == "\n" else column + 1
    return positions


def _indents(text: str) -> np.ndarray:
    indents = np.zeros(len(text), dtype=np.float64)
    start = 0
    for line in text.split("\n"):
        indents[start : start + len(line) + 1] = len(line) - len(line.lstrip(" "))
        start += len(line) + 1  # the newline belongs to its line
    return indents
