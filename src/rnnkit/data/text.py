"""A text file as a vocabulary and a memory-mapped array of ids, built in streaming passes.

A character model reads UTF-8 (one id per Unicode character) or raw bytes (``bytes``: one id per
byte, for files that are not UTF-8). The vocabulary is the sorted set of symbols in the file.
Files of any size are handled in fixed-size chunks: one pass finds the vocabulary, a second
writes the ids into a memory-mapped file (uint8, uint16 or uint32 by vocabulary size), so peak
memory does not grow with the file.
"""

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.errors import UsageError

CHUNK_BYTES = 1 << 20
ENCODINGS = ("utf-8", "bytes")


@dataclass(frozen=True)
class Vocabulary:
    """The symbols of a corpus in id order: characters (utf-8) or byte values (bytes)."""

    encoding: str
    symbols: tuple  # str characters, or int byte values

    def __len__(self) -> int:
        return len(self.symbols)

    @property
    def id_dtype(self) -> np.dtype:
        """The smallest unsigned integer type that holds every id."""
        for dtype in (np.uint8, np.uint16, np.uint32):
            if len(self) <= np.iinfo(dtype).max + 1:
                return np.dtype(dtype)
        raise AssertionError("unreachable: a vocabulary has at most 0x110000 symbols")

    def _code_points(self) -> np.ndarray:
        if self.encoding == "bytes":
            return np.asarray(self.symbols, dtype=np.uint32)
        return np.asarray([ord(s) for s in self.symbols], dtype=np.uint32)

    def encode(self, text: str | bytes) -> np.ndarray:
        """Ids of a text; raises UsageError naming the symbols the vocabulary lacks."""
        codes = _code_points_of(text, self.encoding)
        known = self._code_points()
        ids = np.searchsorted(known, codes)
        ids = np.minimum(ids, len(known) - 1)
        unknown = codes[known[ids] != codes]
        if unknown.size:
            shown = ", ".join(self._show(int(c)) for c in np.unique(unknown)[:20])
            raise UsageError(
                f"{np.unique(unknown).size} symbol(s) are not in the model's vocabulary: {shown}. "
                "Remove them, or train a model on text that contains them"
            )
        return ids.astype(self.id_dtype)

    def decode(self, ids) -> str | bytes:
        """Text of a sequence of ids: a str (utf-8) or bytes (bytes)."""
        if self.encoding == "bytes":
            return bytes(self.symbols[i] for i in ids)
        return "".join(self.symbols[i] for i in ids)

    def _show(self, code: int) -> str:
        if self.encoding == "bytes":
            return f"byte 0x{code:02x}"
        return f"{chr(code)!r} (U+{code:04X})"

    def to_json(self) -> dict:
        return {"encoding": self.encoding, "symbols": list(self.symbols)}

    @classmethod
    def from_json(cls, data: dict) -> "Vocabulary":
        if not isinstance(data, dict) or data.get("encoding") not in ("utf-8", "bytes"):
            raise ValueError("expected an object with encoding 'utf-8' or 'bytes'")
        symbols = data["symbols"]
        if not isinstance(symbols, list):
            raise ValueError(f"symbols should be a list, got {type(symbols).__name__}")
        if data["encoding"] == "bytes":
            return cls("bytes", tuple(int(s) for s in symbols))
        return cls("utf-8", tuple(str(s) for s in symbols))


def _code_points_of(text: str | bytes, encoding: str) -> np.ndarray:
    if encoding == "bytes":
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        return np.frombuffer(data, dtype=np.uint8).astype(np.uint32)
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _chunks(path: Path, encoding: str) -> Iterator[str | bytes]:
    """The file in pieces; for utf-8, decoded, with the byte offset of any invalid sequence."""
    _check_readable(path)
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0  # bytes of the file passed to the decoder so far
    with path.open("rb") as file:
        while True:
            block = file.read(CHUNK_BYTES)
            if encoding == "bytes":
                if not block:
                    return
                yield block
                continue
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as error:
                position = offset - pending + error.start
                raise UsageError(
                    f"{path} is not valid UTF-8: invalid byte 0x{error.object[error.start]:02x} "
                    f"at byte offset {position}. Fix the file, or train on its raw bytes with "
                    "--encoding bytes"
                ) from None
            offset += len(block)
            if text:
                yield text
            if not block:
                return


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise UsageError(f"{path}: no such file. Give the path of a text file with --data")
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not a text file. Give a file with --data")


def scan_vocabulary(path: Path, encoding: str) -> tuple[Vocabulary, int]:
    """First pass: the vocabulary of a file and its length in symbols."""
    if encoding not in ENCODINGS:
        raise UsageError(f"unknown encoding {encoding!r}: use one of {', '.join(ENCODINGS)}")
    seen = np.zeros(0, dtype=np.uint32)
    length = 0
    for chunk in _chunks(path, encoding):
        codes = _code_points_of(chunk, encoding)
        seen = np.union1d(seen, np.unique(codes))
        length += codes.size
    if length == 0:
        raise UsageError(f"{path} is empty: a language model needs text to learn from")
    if encoding == "bytes":
        return Vocabulary("bytes", tuple(int(c) for c in seen)), length
    return Vocabulary("utf-8", tuple(chr(int(c)) for c in seen)), length


def encode_file(path: Path, vocabulary: Vocabulary, length: int, out: Path) -> None:
    """Second pass: write the ids of every symbol of `path` to the file `out`.

    Written with plain buffered writes, not through a writable memory map, so the ids never
    need to be resident in memory (a written map's dirty pages count against the process).
    """
    written = 0
    with out.open("wb") as file:
        for chunk in _chunks(path, vocabulary.encoding):
            encoded = vocabulary.encode(chunk)
            file.write(encoded.tobytes())
            written += encoded.size
    if written != length:
        raise UsageError(f"{path} changed while it was being read; run the command again")


@dataclass
class EncodedText:
    """A corpus ready for training: its vocabulary and its ids (memory-mapped)."""

    vocabulary: Vocabulary
    ids: np.ndarray
    source: str


def load_corpus(path: Path, encoding: str, cache_dir: Path, vocabulary: Vocabulary | None = None):
    """Encode `path` into `cache_dir` (reused when the file is unchanged) and map it.

    With `vocabulary` given (evaluating a trained model on new text) that vocabulary is used,
    and a symbol outside it is an error; otherwise the file's own vocabulary is built.
    """
    _check_readable(path)
    stat = path.stat()
    key = {"source": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    key["encoding"] = encoding
    meta_path, ids_path = cache_dir / "ids.json", cache_dir / "ids.bin"
    if meta_path.exists() and ids_path.exists():
        try:  # a cache: one that does not read as written is made again, below
            meta = json.loads(meta_path.read_text())
            cached = Vocabulary.from_json(meta["vocabulary"])
            length = meta["length"]
            whole = isinstance(length, int) and not isinstance(length, bool) and length >= 0
            usable = meta["key"] == key and whole
        except (ValueError, KeyError, TypeError):
            usable = False
        if usable and (vocabulary is None or cached == vocabulary):
            ids = np.memmap(ids_path, dtype=cached.id_dtype, mode="r", shape=(length,))
            return EncodedText(cached, ids, str(path))
    found, length = scan_vocabulary(path, encoding)
    if vocabulary is not None:
        missing = sorted(set(found.symbols) - set(vocabulary.symbols))
        if missing:
            shown = ", ".join(repr(s) for s in missing[:20])
            raise UsageError(
                f"{path} has {len(missing)} symbol(s) the model never saw in training: {shown}. "
                "Evaluate on text written with the model's vocabulary"
            )
        found = vocabulary
    cache_dir.mkdir(parents=True, exist_ok=True)
    encode_file(path, found, length, ids_path)
    meta = {"key": key, "vocabulary": found.to_json(), "length": length}
    meta_path.write_text(json.dumps(meta))
    ids = np.memmap(ids_path, dtype=found.id_dtype, mode="r", shape=(length,))
    return EncodedText(found, ids, str(path))
