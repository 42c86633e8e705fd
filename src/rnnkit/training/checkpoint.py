"""Checkpoints that are never torn, never pickled, and checked before use.

A checkpoint is a directory ``RUN/checkpoints/step-00001234/`` holding tensors in safetensors
files, everything else in JSON files, and ``manifest.json`` with the size and SHA-256 of every
other file. It is written into a temporary directory, each file fsynced, the manifest written
last, then renamed into place and the parent directory fsynced: after a crash, a kill -9 or a
full disk, a checkpoint directory is either complete or absent (a leftover ``.tmp-*`` directory
never counts). On load, every file is checked against the manifest first, so a truncated or
corrupted file is named in the error instead of being read. Nothing is ever unpickled.
"""

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from rnnkit.errors import UsageError

FORMAT = 1
PREFIX = "step-"


class CheckpointError(UsageError):
    """A checkpoint is incomplete, corrupted or does not fit the run."""


def checkpoint_root(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def _fsync_file(path: Path) -> None:
    with path.open("rb") as file:
        os.fsync(file.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    run_dir: Path,
    step: int,
    tensors: dict[str, dict[str, torch.Tensor]],
    documents: dict[str, dict],
) -> Path:
    """Write one checkpoint atomically; returns its directory.

    tensors: file stem -> named tensors (written as STEM.safetensors);
    documents: file stem -> JSON-able dict (written as STEM.json).
    """
    root = checkpoint_root(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:08d}"
    temporary = root / f".tmp-{PREFIX}{step:08d}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        temporary.mkdir()
        written = []
        for stem, named in tensors.items():
            path = temporary / f"{stem}.safetensors"
            # clone: safetensors refuses tensors that share memory (tied weights) or views.
            save_file({k: v.detach().cpu().clone().contiguous() for k, v in named.items()}, path)
            written.append(path)
        for stem, document in documents.items():
            path = temporary / f"{stem}.json"
            path.write_text(json.dumps(document, indent=1), encoding="utf-8")
            written.append(path)
        for path in written:
            _fsync_file(path)
        manifest = {
            "format": FORMAT,
            "step": step,
            "files": {p.name: {"size": p.stat().st_size, "sha256": _sha256(p)} for p in written},
        }
        manifest_path = temporary / "manifest.json"
        manifest_path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        _fsync_file(manifest_path)
        _fsync_dir(temporary)
        if final.exists():  # a checkpoint of the same step from an earlier, rolled-back run
            shutil.rmtree(final)
        os.replace(temporary, final)
        _fsync_dir(root)
    except OSError as error:
        shutil.rmtree(temporary, ignore_errors=True)
        previous = complete_checkpoints(run_dir)
        kept = (
            f"the previous checkpoint {previous[-1]} is intact"
            if previous
            else "no checkpoint was written"
        )
        reason = "the disk is full" if error.errno == errno.ENOSPC else str(error)
        raise CheckpointError(
            f"could not save the checkpoint of step {step} in {root}: {reason}; {kept}. "
            "Free some space (or use --out on another disk) and resume with --resume"
        ) from None
    return final


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint directories that were renamed into place, oldest first (not yet verified)."""
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
    return sorted(found, key=lambda p: p.name)


def verify(path: Path) -> dict:
    """Check every file of a checkpoint against its manifest; returns the manifest."""
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise CheckpointError(f"{path} is incomplete: it has no manifest.json")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
        well_formed = isinstance(files, dict) and all(
            isinstance(name, str) and Path(name).name == name  # a file of this folder
            and isinstance(entry, dict)
            and isinstance(entry.get("size"), int) and isinstance(entry.get("sha256"), str)
            for name, entry in files.items()
        )  # fmt: skip
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        well_formed = False
    if not well_formed:
        raise CheckpointError(f"{manifest_path} is corrupted (not a valid manifest)")
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"{path} is incomplete: {name} is missing")
        size = file.stat().st_size
        if size != expected["size"]:
            raise CheckpointError(
                f"{file} is truncated or corrupted: {size} bytes, the manifest says "
                f"{expected['size']}"
            )
        if _sha256(file) != expected["sha256"]:
            raise CheckpointError(f"{file} is corrupted: its SHA-256 does not match the manifest")
    return manifest


def load_checkpoint(path: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, dict]]:
    """Verify, then read a checkpoint: (tensors per file stem, documents per file stem)."""
    manifest = verify(path)
    tensors, documents = {}, {}
    for name in manifest["files"]:
        file = path / name
        if name.endswith(".safetensors"):
            tensors[name.removesuffix(".safetensors")] = load_file(file)
        elif name.endswith(".json"):
            documents[name.removesuffix(".json")] = json.loads(file.read_text(encoding="utf-8"))
    return tensors, documents


def load_latest_good(run_dir: Path, prefer: Path | None = None, warn=print):
    """The newest checkpoint that verifies (or `prefer` if it does), falling back past bad ones.

    Returns (path, tensors, documents). Each skipped checkpoint is reported through `warn`.
    """
    candidates = complete_checkpoints(run_dir)[::-1]
    if prefer is not None:
        candidates = [prefer] + [c for c in candidates if c != prefer]
    if not candidates:
        raise CheckpointError(
            f"{run_dir} has no checkpoint: it is not a training run directory, or its run was "
            f"stopped before the first checkpoint. Start it (again) with `rnnkit train --out "
            f"{run_dir}`"
        )
    problems = []
    for path in candidates:
        try:
            tensors, documents = load_checkpoint(path)
        except CheckpointError as error:
            problems.append(str(error))
            warn(f"warning: skipping a bad checkpoint: {error}")
            continue
        return path, tensors, documents
    raise CheckpointError(f"no usable checkpoint in {run_dir}: " + "; ".join(problems))


def rotate(run_dir: Path, keep: int, best: Path | None) -> None:
    """Delete all but the newest `keep` checkpoints and the best one; clear stale temp dirs."""
    root = checkpoint_root(run_dir)
    for leftover in root.glob(f".tmp-{PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    complete = complete_checkpoints(run_dir)
    for path in complete[:-keep] if keep else complete:
        if best is None or path.resolve() != best.resolve():
            shutil.rmtree(path, ignore_errors=True)


def mark_best(run_dir: Path, path: Path, document: dict) -> None:
    """Record `path` as the run's best checkpoint (checkpoints/best.json, replaced atomically)."""
    root = checkpoint_root(run_dir)
    temporary = root / "best.json.tmp"
    temporary.write_text(json.dumps({"checkpoint": path.name, **document}))
    temporary.replace(root / "best.json")


def load_chosen(run_dir: Path, which: str = "best", warn=print):
    """(path, tensors, documents) of the best checkpoint ("best") or the newest ("latest"); a
    bad one is skipped, with a warning, in favour of the newest good one."""
    prefer = None
    best_file = checkpoint_root(run_dir) / "best.json"
    if which == "best" and best_file.is_file():
        try:
            name = json.loads(best_file.read_text())["checkpoint"]
            if not isinstance(name, str):
                raise TypeError(f"checkpoint should be a string, got {type(name).__name__}")
            prefer = checkpoint_root(run_dir) / name
        except (ValueError, KeyError, TypeError):
            warn(f"warning: {best_file} is corrupted; using the latest checkpoint")
    return load_latest_good(run_dir, prefer=prefer, warn=warn)


def load_weights(model: torch.nn.Module, weights: dict, path: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = [
        f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in weights and weights[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if unexpected:
            parts.append("unexpected " + ", ".join(unexpected))
        if wrong:
            parts.append("shapes differ: " + "; ".join(wrong))
        raise CheckpointError(
            f"{path} does not fit the model described by config.json: " + "; ".join(parts)
        )
    model.load_state_dict(weights)
