"""One pipeline per workspace, one writer per run folder.

Both are file locks (`filelock`, flock underneath): the kernel drops them when their holder dies,
so a `kill -9` never leaves a stale lock behind. They live in `.seqbench/` at the project root,
outside every DVC output.

The workspace lock is held by `make run` (the pipeline flow), the search and comparison flows and
every writing `seqbench` command, for their whole run. The pipeline's own children (the stages
`dvc repro` starts) find it held by their ancestor through an environment variable and go on; any
other process is turned away with a message naming the holder.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from seqbench.errors import SeqbenchError

HELD_BY_ANCESTOR = "SEQBENCH_WORKSPACE_LOCK"


class WorkspaceBusy(SeqbenchError):
    """Another seqbench run works in this workspace."""


def lock_folder(root: Path) -> Path:
    return Path(root).resolve() / ".seqbench"


@contextmanager
def workspace_lock(root: Path | str, wait_s: float = 0):
    """Hold the workspace of `root` for the body; raise WorkspaceBusy if another run holds it
    for longer than `wait_s` seconds."""
    from filelock import FileLock, Timeout

    folder = lock_folder(Path(root))
    path = folder / "workspace.lock"
    if held_by_ancestor(path):
        yield  # e.g. `make run` -> dvc repro -> this stage: the pipeline already holds it
        return
    folder.mkdir(exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=wait_s)
    except Timeout:
        raise WorkspaceBusy(
            f"another seqbench run is working in {folder.parent}: {describe_holder(folder)}. One "
            "pipeline runs per workspace; wait for it to finish (or stop it) and start again."
        ) from None
    holder = folder / "workspace.holder.json"
    outer = os.environ.get(HELD_BY_ANCESTOR)
    try:
        holder.write_text(
            json.dumps({"pid": os.getpid(), "command": " ".join(sys.argv), "since": time.strftime("%Y-%m-%d %H:%M:%S")})
        )
        os.environ[HELD_BY_ANCESTOR] = f"{path}#{os.getpid()}"  # the stages this run starts inherit it
        yield
    finally:
        if outer is None:
            os.environ.pop(HELD_BY_ANCESTOR, None)
        else:
            os.environ[HELD_BY_ANCESTOR] = outer
        holder.unlink(missing_ok=True)
        lock.release()


def held_by_ancestor(path: Path) -> bool:
    """Does this process's own ancestor (or this process) hold the lock at `path`? The variable
    a holder sets names the lock and the holder's PID; a copy of it in another process tree (an
    inherited shell, a pasted environment) is not honoured."""
    value = os.environ.get(HELD_BY_ANCESTOR, "")
    locked, _, pid = value.rpartition("#")
    if locked != str(path) or not pid.isdigit():
        return False
    ancestors = process_ancestors()
    return ancestors is None or int(pid) in ancestors


def process_ancestors() -> set[int] | None:
    """This process's PID and those of its ancestors (from /proc); None where /proc cannot tell,
    and the variable is then trusted as before."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    found, pid = set(), os.getpid()
    while pid > 0 and pid not in found:
        found.add(pid)
        try:
            stat = (proc / str(pid) / "stat").read_text()
            pid = int(stat.rpartition(")")[2].split()[1])  # the field after the state: the parent
        except (OSError, ValueError, IndexError):
            break
    return found


def describe_holder(folder: Path) -> str:
    """Who holds the workspace, from the note its holder left (best effort: it may be
    between taking the lock and writing the note)."""
    try:
        holder = json.loads((folder / "workspace.holder.json").read_text())
        return f"process {holder['pid']} (`{holder['command']}`), since {holder['since']}"
    except (OSError, ValueError, KeyError):
        return "a process that has just started or is finishing"


@contextmanager
def run_folder_lock(root: Path | str, run_key: str):
    """One writer per training run folder: a second process training the same run waits, then
    finds it finished (or resumes it), instead of deleting a live run's files."""
    from filelock import FileLock

    path = lock_folder(Path(root)) / "runs" / f"{run_key}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path):
        yield
