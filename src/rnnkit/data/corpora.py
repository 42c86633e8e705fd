"""Where a run's text comes from: a file, the bundled Tiny Shakespeare, or the Python standard
library of the running interpreter.

``--data python-stdlib`` is a corpus of source code that every machine with Python has, with
the string literals, brackets and indentation that interpretable cells track
(rnnkit.inside). It is the standard library's ``.py`` files (``sysconfig``'s ``stdlib``
folder), sorted by path, leaving out test suites (``test``/``tests`` folders), ``idlelib``
and ``site-packages``, and files that are not pure ASCII (so the vocabulary stays under 100
symbols), each preceded by a ``# file: PATH`` line, up to 8 MB. It is written once into the
run's ``data/`` folder; the same interpreter gives the same text.
"""

import sysconfig
from pathlib import Path

BUNDLED_CORPUS = Path(__file__).resolve().parents[1] / "assets" / "tinyshakespeare" / "input.txt"
PYTHON_STDLIB = "python-stdlib"
STDLIB_BYTES = 8_000_000
SKIPPED_FOLDERS = {"test", "tests", "idlelib", "site-packages", "__pycache__"}


def corpus_path(data: str | None, cache_dir: Path) -> Path:
    """The text file for a run's ``--data`` value (None: the bundled Tiny Shakespeare)."""
    if not data:
        return BUNDLED_CORPUS
    if data == PYTHON_STDLIB:
        return python_stdlib_text(cache_dir)
    return Path(data)


def python_stdlib_text(cache_dir: Path, limit: int = STDLIB_BYTES) -> Path:
    target = cache_dir / f"{PYTHON_STDLIB}.txt"
    if target.is_file():
        return target
    root = Path(sysconfig.get_paths()["stdlib"])
    parts, size = [], 0
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if SKIPPED_FOLDERS & set(relative.parts[:-1]):
            continue
        try:
            source = path.read_bytes()
        except OSError:
            continue
        if not source.isascii():
            continue
        piece = f"# file: {relative.as_posix()}\n".encode() + source.rstrip(b"\n") + b"\n\n"
        if size + len(piece) > limit:
            break
        parts.append(piece)
        size += len(piece)
    cache_dir.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    temporary.write_bytes(b"".join(parts))
    temporary.replace(target)
    return target
