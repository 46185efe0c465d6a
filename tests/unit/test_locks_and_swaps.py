"""The workspace lock's inherited variable, and folder swaps that always leave the old or the new
folder in place."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from seqbench import io
from seqbench.locks import HELD_BY_ANCESTOR, WorkspaceBusy, lock_folder, workspace_lock

HOLD = (
    "import sys, time\n"
    "from seqbench.locks import workspace_lock\n"
    "with workspace_lock(sys.argv[1]):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(60)\n"
)


def test_a_copied_lock_variable_from_another_process_tree_is_not_honoured(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        path = lock_folder(tmp_path) / "workspace.lock"
        # What the holder's own children inherit, pasted into a process that is not one of them.
        copied = {**os.environ, HELD_BY_ANCESTOR: f"{path}#{holder.pid}"}
        check = (
            "import sys\n"
            "from seqbench.locks import WorkspaceBusy, workspace_lock\n"
            "try:\n"
            "    with workspace_lock(sys.argv[1]):\n"
            "        print('entered')\n"
            "except WorkspaceBusy as exc:\n"
            "    print('busy:', exc)\n"
        )
        process = subprocess.run([sys.executable, "-c", check, str(tmp_path)], env=copied, capture_output=True,
                                 text=True, timeout=60)  # fmt: skip
        assert process.stdout.startswith("busy:"), process.stdout + process.stderr
        assert f"process {holder.pid}" in process.stdout
    finally:
        holder.kill()
        holder.wait()


def test_the_holders_children_share_its_lock(tmp_path):
    code = (
        "import subprocess, sys\n"
        "from seqbench.locks import workspace_lock\n"
        "with workspace_lock(sys.argv[1]):\n"
        "    child = 'import sys\\nfrom seqbench.locks import workspace_lock\\n'\n"
        "    child += 'with workspace_lock(sys.argv[1]):\\n    print(\"child entered\")'\n"
        "    print(subprocess.run([sys.executable, '-c', child, sys.argv[1]], capture_output=True, text=True).stdout)\n"
    )
    process = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert "child entered" in process.stdout, process.stderr


def test_a_variable_in_the_old_format_is_not_honoured(tmp_path, monkeypatch):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setenv(HELD_BY_ANCESTOR, str(lock_folder(tmp_path) / "workspace.lock"))  # no holder PID
        with pytest.raises(WorkspaceBusy):
            with workspace_lock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()


def test_an_old_folder_a_killed_writer_left_aside_is_put_back(tmp_path):
    out = tmp_path / "out"
    aside = tmp_path / ".out.old-4242"  # moved aside, then the writer died before the new one went in
    aside.mkdir()
    (aside / "a.csv").write_text("old")
    with pytest.raises(RuntimeError):
        with io.atomic_dir(out) as tmp:
            (tmp / "a.csv").write_text("half")
            raise RuntimeError("the next writer fails too")
    assert (out / "a.csv").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("atomic_exchange", [True, False])
def test_a_folder_swap_never_leaves_the_path_empty(tmp_path, monkeypatch, atomic_exchange):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.csv").write_text("old")
    if not atomic_exchange:
        monkeypatch.setattr(io, "exchange", lambda a, b: False)
    seen = []
    real_replace = os.replace

    def watching(src, dst):
        real_replace(src, dst)
        seen.append(out.exists())

    monkeypatch.setattr(io.os, "replace", watching)
    with io.atomic_dir(out) as tmp:
        (tmp / "a.csv").write_text("new")
    assert (out / "a.csv").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    if atomic_exchange:
        assert seen == []  # one renameat2 exchange, no moment without `out`
    else:
        assert seen == [False, True]  # the fallback's window, which remove_leftovers recovers from
