"""What Prefect costs a training stage: seconds from the stage's start to its first training step.

Three ways to start the same one-run training stage (`python flows/train.py toy`), each timed
until the run prints "training started", alternating, 3 times, medians:

  bare      train_run() called directly, no Prefect at all (the baseline: Python, torch, data);
  temporary no PREFECT_API_URL: the stage starts its own temporary Prefect server (what each
            train stage of `dvc repro` pays when run alone; Prefect's ephemeral mode costs the same);
  server    PREFECT_API_URL set to a running `prefect server start` (what every train stage pays
            under `make run`, which starts one temporary server for the whole pipeline, or under
            the scheduled deployment).

    python bench/prefect_overhead.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PARAMS = {
    "train": {"seeds": [0], "cells": ["lstm"], "max_epochs": 1, "hidden_size": 8, "runner": "sequential"},
    "datasets": {"toy": {"kind": "stock", "source": "prices.csv", "symbol": "TOY", "lookback": 10}},
}
BARE = "import sys; from seqbench.training.runs import train_run; train_run('toy', 'lstm', 0, 'params.yaml', 1)"


def prepared_project(folder: Path) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    dates = pd.bdate_range("2020-01-01", periods=400)
    pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": 1e6,
        }
    ).to_csv(folder / "prices.csv", index=False)
    (folder / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    shutil.copytree(REPO / "flows", folder / "flows")
    for step in ("ingest", "validate", "prepare"):
        subprocess.run([sys.executable, "-m", "seqbench", step, "toy"], cwd=folder, check=True, capture_output=True)


def seconds_to_first_step(command: list[str], folder: Path, env: dict) -> float:
    shutil.rmtree(folder / "models", ignore_errors=True)  # a fresh run every time, not a reused one
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    for line in process.stderr:
        if "training started" in line:
            elapsed = time.perf_counter() - started
            break
    else:
        raise RuntimeError(f"{command} ended before training started")
    process.stderr.close()
    process.wait()
    return elapsed


def start_server(home: Path, env: dict) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            shutil.which("prefect", path=os.path.dirname(sys.executable)) or "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-ui",
        ],
        env={**env, "PREFECT_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    for _ in range(360):
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return server, url
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("prefect server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "project"
        folder.mkdir()
        prepared_project(folder)
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env.update(PREFECT_HOME=str(Path(tmp) / "home-temporary"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
        server, url = start_server(Path(tmp) / "home-server", env)
        modes = {
            "bare": ([sys.executable, "-c", BARE], env),
            "temporary": ([sys.executable, "flows/train.py", "toy"], env),
            "server": ([sys.executable, "flows/train.py", "toy"], {**env, "PREFECT_API_URL": url}),
        }
        times = {mode: [] for mode in modes}
        try:
            for _ in range(args.repeats):
                for mode, (command, mode_env) in modes.items():
                    times[mode].append(seconds_to_first_step(command, folder, mode_env))
        finally:
            server.terminate()
            server.wait(timeout=30)
    median = {mode: statistics.median(values) for mode, values in times.items()}
    print(f"seconds from stage start to the first training step (median of {args.repeats}, this machine):")
    for mode, value in median.items():
        print(f"  {mode:<10} {value:6.1f} s   runs: {', '.join(f'{v:.1f}' for v in times[mode])}")
    print(
        f"Prefect's cost per stage, temporary server: +{median['temporary'] - median['bare']:.1f} s "
        f"({median['temporary'] / median['bare']:.2f}x bare)"
    )
    print(
        f"Prefect's cost per stage, running server:   +{median['server'] - median['bare']:.1f} s "
        f"({median['server'] / median['bare']:.2f}x bare)"
    )


if __name__ == "__main__":
    main()
