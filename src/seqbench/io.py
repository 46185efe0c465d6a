"""Atomic writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path | str):
    """Yield a temporary path beside `path`; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    tmp.chmod(0o644)  # mkstemp makes it private; outputs should read like any other file
    try:
        yield tmp
        fsync_path(tmp)  # the bytes reach the disk before the name points at them
        os.replace(tmp, path)
        fsync_path(path.parent)  # and the rename itself survives a power cut
    finally:
        tmp.unlink(missing_ok=True)


def remove_leftovers(path: Path) -> None:
    """Remove what a killed writer of `path` left beside it (`.NAME.*.tmp`, `.NAME.old-PID`):
    never trusted, but inside a folder that a stage depends on it would change the folder's
    hash. Writers of one path never overlap (one pipeline per workspace, one per run folder).
    An old folder whose writer died between moving it aside and moving the new one in is put
    back first: `path` then holds the old state, never nothing."""
    import glob

    olds = sorted(path.parent.glob(f".{glob.escape(path.name)}.old-*"))
    if olds and not path.exists():
        os.replace(olds[0], path)
        fsync_path(path.parent)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*"):
        if stale.name.endswith(".tmp") or stale.name.startswith(f".{path.name}.old-"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


def fsync_path(path: Path) -> None:
    """Flush a file's or a directory's contents to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Flush every file and folder below `folder`, and `folder` itself."""
    for root, _, files in os.walk(folder):
        for name in files:
            fsync_path(Path(root) / name)
        fsync_path(Path(root))


@contextmanager
def atomic_dir(path: Path | str):
    """Yield a temporary directory beside `path`; swap it in for `path` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; outputs should read like any other folder
    try:
        yield tmp
        fsync_tree(tmp)
        if path.exists() and exchange(tmp, path):
            fsync_path(path.parent)  # one step: `path` held the old folder, now the new one
            return  # the old one is at `tmp`, removed below
        old = None
        if path.exists():  # no atomic exchange here: old aside, new in; remove_leftovers recovers
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        fsync_path(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux's renameat2 with RENAME_EXCHANGE); False where
    the system or the file system cannot, and nothing was changed."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


@functools.cache
def _renameat2():
    """libc's renameat2, or None; looked up once (find_library runs ldconfig)."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).renameat2
    except (OSError, AttributeError):
        return None


def write_parquet(df, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, engine="pyarrow", index=False)


def write_json(data: dict, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_stage_json(path: Path | str, stage: str) -> dict:
    """A JSON file a DVC stage wrote (its `stage` address, e.g. evaluate@text): a missing or
    corrupt one is an error that says which stage to run again."""
    from seqbench.errors import SeqbenchError

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeqbenchError(f"{path}: not found; run `dvc repro {stage}` first") from None
    except json.JSONDecodeError as exc:
        raise SeqbenchError(f"{path}: not valid JSON ({exc}); rerun `dvc repro {stage}`") from None
