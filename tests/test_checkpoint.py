"""Checkpoints: atomic, verified against a manifest, rotated, never pickled."""

import errno
import json
import re
from pathlib import Path

import pytest
import torch

from rnnkit.training import checkpoint
from rnnkit.training.checkpoint import CheckpointError


def save(run_dir, step, value=1.0):
    return checkpoint.save_checkpoint(
        run_dir,
        step,
        tensors={"model": {"w": torch.full((3, 4), value)}},
        documents={"trainer": {"step": step}},
    )


def test_round_trip(tmp_path):
    path = save(tmp_path, 5, 2.5)
    tensors, documents = checkpoint.load_checkpoint(path)
    assert torch.equal(tensors["model"]["w"], torch.full((3, 4), 2.5))
    assert documents["trainer"] == {"step": 5}
    manifest = json.loads((path / "manifest.json").read_text())
    assert set(manifest["files"]) == {"model.safetensors", "trainer.json"}


def test_truncated_file_is_detected_and_named(tmp_path):
    path = save(tmp_path, 5)
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model.safetensors is truncated"):
        checkpoint.load_checkpoint(path)


def test_one_flipped_byte_is_detected(tmp_path):
    path = save(tmp_path, 5)
    data = bytearray((path / "model.safetensors").read_bytes())
    data[-1] ^= 0x01  # inside the tensor data: safetensors itself would load it silently
    (path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model.safetensors is corrupted"):
        checkpoint.load_checkpoint(path)


def test_resume_falls_back_past_a_bad_checkpoint(tmp_path):
    save(tmp_path, 5, 1.0)
    newest = save(tmp_path, 10, 2.0)
    (newest / "manifest.json").unlink()  # as if killed before the manifest was written
    warnings = []
    path, tensors, _ = checkpoint.load_latest_good(tmp_path, warn=warnings.append)
    assert path.name == "step-00000005"
    assert torch.equal(tensors["model"]["w"], torch.full((3, 4), 1.0))
    assert "no manifest.json" in warnings[0]


def test_a_directory_without_checkpoints_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="has no checkpoint"):
        checkpoint.load_latest_good(tmp_path)


def test_leftover_temporary_directories_never_count(tmp_path):
    save(tmp_path, 5)
    (tmp_path / "checkpoints" / ".tmp-step-00000010-999").mkdir()
    assert [p.name for p in checkpoint.complete_checkpoints(tmp_path)] == ["step-00000005"]


def test_rotation_keeps_the_last_n_and_the_best(tmp_path):
    paths = [save(tmp_path, step) for step in (1, 2, 3, 4, 5)]
    checkpoint.rotate(tmp_path, keep=2, best=paths[1])
    names = [p.name for p in checkpoint.complete_checkpoints(tmp_path)]
    assert names == ["step-00000002", "step-00000004", "step-00000005"]


def test_disk_full_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    save(tmp_path, 5, 1.0)

    def full_disk(tensors, path):
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    with pytest.raises(
        CheckpointError, match=r"disk is full; the previous checkpoint .*step-00000005"
    ):
        save(tmp_path, 10, 2.0)
    assert [p.name for p in checkpoint.complete_checkpoints(tmp_path)] == ["step-00000005"]
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
    checkpoint.load_checkpoint(tmp_path / "checkpoints" / "step-00000005")


def test_no_code_path_can_unpickle():
    source = Path(__file__).resolve().parents[1] / "src" / "rnnkit"
    offenders = [
        str(path)
        for path in source.rglob("*.py")
        if re.search(r"torch\.load\(|pickle\.load|import pickle", path.read_text())
    ]
    assert offenders == []
