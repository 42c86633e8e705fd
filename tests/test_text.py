"""Text into a vocabulary and memory-mapped ids, in streaming passes; bad files get clear errors."""

import numpy as np
import pytest

from rnnkit.data import text
from rnnkit.data.text import Vocabulary, load_corpus, scan_vocabulary
from rnnkit.errors import UsageError


def test_vocabulary_is_the_sorted_set_of_characters(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("héllo wörld\n", encoding="utf-8")
    vocabulary, length = scan_vocabulary(path, "utf-8")
    assert vocabulary.symbols == tuple(sorted(set("héllo wörld\n")))
    assert length == 12
    ids = vocabulary.encode("wörld")
    assert vocabulary.decode(ids) == "wörld"
    assert ids.dtype == np.uint8


def test_streaming_across_chunk_borders_matches_reading_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(text, "CHUNK_BYTES", 7)  # split multi-byte characters across chunks
    content = "ab€cdé\n日本語のテキスト" * 13
    path = tmp_path / "a.txt"
    path.write_text(content, encoding="utf-8")
    corpus = load_corpus(path, "utf-8", tmp_path / "cache")
    assert corpus.vocabulary.decode(corpus.ids) == content
    assert isinstance(corpus.ids, np.memmap)


def test_large_vocabularies_use_wider_ids():
    assert Vocabulary("utf-8", tuple(chr(i) for i in range(300))).id_dtype == np.uint16
    assert Vocabulary("utf-8", tuple(chr(i) for i in range(70000))).id_dtype == np.uint32


def test_bytes_encoding_reads_any_file(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"\xff\xfeabc\x00")
    corpus = load_corpus(path, "bytes", tmp_path / "cache")
    assert corpus.vocabulary.decode(corpus.ids) == b"\xff\xfeabc\x00"


def test_invalid_utf8_reports_the_byte_offset_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(text, "CHUNK_BYTES", 4)
    path = tmp_path / "a.txt"
    path.write_bytes("héllo".encode() + b"\xff rest")
    with pytest.raises(UsageError, match=r"byte 0xff at byte offset 6.*--encoding bytes"):
        load_corpus(path, "utf-8", tmp_path / "cache")


def test_empty_and_missing_files_are_named(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(UsageError, match="is empty"):
        load_corpus(empty, "utf-8", tmp_path / "cache")
    with pytest.raises(UsageError, match="no such file"):
        load_corpus(tmp_path / "missing.txt", "utf-8", tmp_path / "cache")
    with pytest.raises(UsageError, match="is a directory"):
        load_corpus(tmp_path, "utf-8", tmp_path / "cache")


def test_unknown_characters_are_listed():
    vocabulary = Vocabulary("utf-8", tuple("abc"))
    with pytest.raises(UsageError, match=r"2 symbol\(s\).*'x' \(U\+0078\), 'z'"):
        vocabulary.encode("abxcz")


def test_the_cache_is_reused_and_refreshed_when_the_file_changes(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("abcabc")
    first = load_corpus(path, "utf-8", tmp_path / "cache")
    assert first.vocabulary.decode(first.ids) == "abcabc"
    path.write_text("xyz, longer")
    second = load_corpus(path, "utf-8", tmp_path / "cache")
    assert second.vocabulary.decode(second.ids) == "xyz, longer"
