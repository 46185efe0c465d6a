"""Real processes for the tests: commands, a git + DVC repository of the project, free ports, a
local file server."""

from __future__ import annotations

import os
from pathlib import Path

import yaml


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


REPO = Path(__file__).resolve().parents[1]


GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def run_command(cmd, cwd, env, timeout=1200) -> str:
    """Runs `cmd`, fails the test with its output unless it exits 0. The timeout only catches a
    hang: the whole pipeline takes about 5 minutes alone, twice that beside another heavy test."""
    import subprocess

    process = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert process.returncode == 0, f"{cmd} failed:\n{process.stdout[-5000:]}\n{process.stderr[-5000:]}"
    return process.stdout + process.stderr


def dvc_project(root: Path, params: dict, files: dict) -> dict:
    """A git + DVC repository holding this project's pipeline and code, `params` as its
    params.yaml and `files` (name -> DataFrame) as sources, committed once (DVCLive refuses a
    repository without commits). Returns the environment to run it with (no Prefect API set)."""
    import os
    import shutil
    import sys

    root.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", ".dvcignore", ".gitignore", "data/README.md"):  # data/README.md: data/ as in a clone
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, root / name)
    for folder in ("src", "flows", "reports/setups"):  # reports/setups: the report stage's record of set-ups tried
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name, frame in files.items():
        frame.to_csv(root / name, index=False)
    params = {"verdict": {"rope": {}}, **params}  # evaluate's DVC params name the section
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, **GIT_IDENTITY, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PREFECT_API_URL", None)
    for cmd in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "config", "core.analytics", "false"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "project"],
    ):
        run_command(cmd, root, env)
    return env


def stop_process_group(process, timeout: float = 30) -> None:
    """SIGTERM a process started with start_new_session=True and its children; SIGKILL if it lingers."""
    import signal
    import subprocess

    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


TINY_DVC = {
    "train": {"seeds": [0], "max_epochs": 2, "hidden_size": 4, "batch_size": 32, "runner": "sequential"},
    "datasets": {"prices": {"kind": "stock", "source": "prices.csv", "symbol": "TOY", "lookback": 5}},
}


def files_handler(folder: Path):
    """An http.server handler class serving `folder`, without a log line per request."""
    import http.server

    class Files(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args):
            pass

    return Files


def write_table(frame, path: Path) -> None:
    """Write `frame` in the format its file name names (.parquet, .jsonl, .tsv, .csv.gz, .csv)."""
    import gzip

    if path.name.endswith(".parquet"):
        frame.to_parquet(path)
    elif path.name.endswith(".jsonl"):
        frame.to_json(path, orient="records", lines=True)
    elif path.name.endswith(".tsv"):
        frame.to_csv(path, sep="\t", index=False)
    elif path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    else:
        frame.to_csv(path, index=False)
