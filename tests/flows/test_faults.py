"""Faults tried for real: a second pipeline, hand-run DVC commands during a run, and a stage
killed with SIGKILL. (Training killed mid-epoch, corrupt checkpoints and empty state files:
tests/test_training.py; a stalling URL and a file over max_bytes: tests/test_sources.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import yaml

from processes import run_command, stop_process_group


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# A read-only DVC command on a large workspace, over and over: it holds DVC's lock for 8 s at a
# time. DVC alone retakes its lock after a stage's command with 3 s of retries, so without
# `--wait-for-lock` a stage ending inside such a hold would fail.
SLOW_READER = """
import time
from dvc.lock import LockError
from dvc.repo import Repo
lock = Repo('.').lock
while True:
    try:
        lock.lock()
    except LockError:
        continue
    time.sleep(8)
    lock.unlock()
    time.sleep(1.5)
"""


def test_one_pipeline_per_workspace_and_dvc_status_never_fails_it(tiny_project, prefect_server):
    root, env = tiny_project
    env = {**env, **prefect_server}
    first = subprocess.Popen(
        [sys.executable, "flows/pipeline.py"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(lambda: (root / ".seqbench/workspace.holder.json").exists(), 120, "the pipeline to take the workspace")
        second = subprocess.run(
            [sys.executable, "flows/pipeline.py"], cwd=root, env=env, capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 1
        assert f"another seqbench run is working in {root}: process {first.pid}" in second.stderr, second.stderr
        assert "flows/pipeline.py" in second.stderr and "Traceback" not in second.stderr
        by_hand = subprocess.run(
            ["seqbench", "ingest", "prices"], cwd=root, env=env, capture_output=True, text=True, timeout=120
        )
        assert by_hand.returncode == 1 and f"process {first.pid}" in by_hand.stderr, by_hand.stderr
        assert "Traceback" not in by_hand.stderr

        # Read-only DVC commands as a user would type them, over and over while stages run, and a
        # slow reader beside them.
        reader = subprocess.Popen([sys.executable, "-c", SLOW_READER], cwd=root, env=env)
        hand_commands = 0
        while first.poll() is None:
            for command in (["dvc", "status"], ["dvc", "metrics", "show"]):
                subprocess.run(command, cwd=root, env=env, capture_output=True, timeout=120)
                hand_commands += 1
        reader.kill()
        output = first.stdout.read()
    finally:
        if first.poll() is None:
            stop_process_group(first)
    assert first.returncode == 0, output[-5000:]
    assert "Running stage 'train@prices'" in output and "Running stage 'report'" in output
    assert hand_commands >= 10  # they really overlapped the run
    assert not (root / ".seqbench/workspace.holder.json").exists()  # let go at the end
    run_command(["seqbench", "report"], root, env)  # the workspace is free again


# Loaded by every Python process of the stage through PYTHONPATH: the first folder a writer is
# about to swap in is left complete but unswapped, a marker says so, and the process waits to be
# killed. So the kill lands mid-write every time, however fast the machine.
STALL_BEFORE_SWAP = """
import os, time
from pathlib import Path
import seqbench.io

def stall(folder):
    Path(os.environ["STALLED_MARKER"]).write_text(str(folder))
    time.sleep(600)

seqbench.io.fsync_tree = stall
"""


def test_a_stage_killed_midway_leaves_nothing_trusted(tiny_project, tmp_path):
    root, env = tiny_project
    run_command(["dvc", "repro", "ingest@prices"], root, env)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(STALL_BEFORE_SWAP)
    marker = tmp_path / "stalled"
    stalled_env = {
        **env,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(hooks), env.get("PYTHONPATH")])),
        "STALLED_MARKER": str(marker),
    }
    stage = subprocess.Popen(
        ["dvc", "repro", "validate@prices"],
        cwd=root,
        env=stalled_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(marker.exists, 300, "validate to reach its first swap")
        # Mid-write: a finished temporary folder beside its final place, not yet swapped in.
        assert any((root / "reports/validation").glob(".prices.*.tmp"))
    finally:
        os.killpg(stage.pid, signal.SIGKILL)  # dvc and the stage's `seqbench validate`
        stage.wait()
    assert not (root / "data/validated/prices.parquet").exists()
    assert not (root / "reports/validation/prices.json").exists()
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    assert "validate@prices" not in lock["stages"]  # DVC recorded nothing for the killed stage
    assert "validate@prices" in run_command(["dvc", "status", "validate@prices"], root, env)

    run_command(["dvc", "repro", "validate@prices"], root, env)  # no stale lock stops the rerun
    assert json.loads((root / "reports/validation/prices.json").read_text())["success"]
    assert (root / "reports/validation/prices/index.html").exists()
    leftovers = [p.name for p in (root / "reports/validation").iterdir() if p.name.startswith(".")]
    assert leftovers == []  # the killed writer's temporary folder is gone


def test_dataset_names_are_checked_before_any_shell_sees_them(tiny_project):
    """DVC puts `${key}` into the stages' command lines; make run's flow validates params.yaml
    before it starts DVC, so a name carrying a shell command never runs."""
    root, env = tiny_project
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["datasets"]["a;touch PWNED;"] = params["datasets"].pop("prices")
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    process = subprocess.run(
        [sys.executable, "flows/pipeline.py"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert process.returncode == 1
    assert "dataset name 'a;touch PWNED;': use only letters" in process.stderr, process.stderr
    assert "Traceback" not in process.stderr
    assert not (root / "PWNED").exists() and not (root / "data/raw").exists()
