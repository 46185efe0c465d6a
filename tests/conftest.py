"""Shared helpers: a throwaway project folder with its own params.yaml, and the CLI runner."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from seqbench.cli import app


class Project:
    """A project root in a temp folder: params.yaml plus source files beside it."""

    def __init__(self, root: Path):
        self.root = root

    def params(self, datasets: dict) -> Path:
        path = self.root / "params.yaml"
        path.write_text(yaml.safe_dump({"datasets": datasets}, sort_keys=False))
        return path

    def write(self, name: str, content) -> Path:
        path = self.root / name
        if isinstance(content, pd.DataFrame):
            if name.endswith(".parquet"):
                content.to_parquet(path, index=False)
            elif name.endswith(".jsonl"):
                content.to_json(path, orient="records", lines=True, date_format="iso")
            else:
                content.to_csv(path, index=False)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def run(self, *args: str):
        """Run `seqbench ARGS --params <this project's params.yaml>` in-process."""
        # A wide terminal, so rich tables don't wrap the cells the tests read.
        result = CliRunner(env={"COLUMNS": "200"}).invoke(app, [*args, "--params", str(self.root / "params.yaml")])
        return result

    def read(self, folder: str, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.root / "data" / folder / f"{name}.parquet")

    def exists(self, relative: str) -> bool:
        return (self.root / relative).exists()


@pytest.fixture
def project(tmp_path) -> Project:
    return Project(tmp_path)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stock_frame(days: int = 30, symbol: str | None = None, start: str = "2020-01-01") -> pd.DataFrame:
    """A clean daily OHLCV table on business days."""
    dates = pd.bdate_range(start, periods=days)
    close = 100 + pd.Series(range(days), dtype="float64")
    frame = pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": 1000.0,
        }
    )
    if symbol is not None:
        frame.insert(1, "symbol", symbol)
    return frame


def text_frame(n: int = 20) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "review": [f"review number {i} was {'great' if i % 2 else 'meh'}" for i in range(n)],
            "score": ["great" if i % 2 else "other" for i in range(n)],
        }
    )


def video_frame(clips: int = 6, frames: int = 12, dims: int = 2) -> pd.DataFrame:
    rows = []
    for c in range(clips):
        for t in range(frames):
            row = {"clip_id": f"c{c}", "frame": t, "label": "a" if c % 2 else "b"}
            row.update({f"f_{d}": float(c + t * 0.1 + d) for d in range(dims)})
            rows.append(row)
    return pd.DataFrame(rows)


STOCK = {"kind": "stock", "source": "prices.csv", "max_quarantine_fraction": 1.0}
TEXT = {
    "kind": "text",
    "source": "reviews.csv",
    "columns": {"text": "review", "label": "score"},
    "labels": ["great", "other"],
    "max_quarantine_fraction": 1.0,
}
VIDEO = {"kind": "video", "source": "clips.csv", "min_frames": 2, "max_quarantine_fraction": 1.0}


def assert_clean_failure(result, *fragments: str) -> None:
    """A user error: exit 1, a message naming the problem, and no traceback."""
    output = result.output
    assert result.exit_code == 1, f"exit {result.exit_code}: {output}\n{result.exception!r}"
    assert "Traceback" not in output
    assert "error:" in output
    for fragment in fragments:
        assert fragment in output, f"{fragment!r} not in {output!r}"


TINY_TRAIN = {"seeds": [0, 1], "max_epochs": 3, "patience": 3, "batch_size": 16, "hidden_size": 4, "size_match": "hidden",
              "runner": "sequential", "workers": 2, "retries": 0}


def random_walk_prices(days: int = 160, seed: int = 0) -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng(seed)
    frame = stock_frame(days)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, days)))
    frame["close"] = close
    frame["open"] = close * (1 + rng.normal(0, 0.002, days))
    frame["high"] = np.maximum(frame["open"], close) * 1.005
    frame["low"] = np.minimum(frame["open"], close) * 0.995
    return frame


@pytest.fixture
def prepared_stock(project) -> Project:
    """A project with a small stock dataset ingested, validated and prepared."""
    project.write("prices.csv", random_walk_prices())
    project.params({"toy": {**STOCK, "lookback": 5}})
    params = yaml.safe_load((project.root / "params.yaml").read_text())
    params["train"] = dict(TINY_TRAIN)
    (project.root / "params.yaml").write_text(yaml.safe_dump(params))
    for step in ("ingest", "validate", "prepare"):
        result = project.run(step, "toy")
        assert result.exit_code == 0, result.output
    fixed_search(project)
    return project


def fixed_search(project, name: str = "toy") -> None:
    """The search stage's result without trials: params.yaml's budget for every cell (rerun it
    after changing the budget, as `dvc repro` would)."""
    from seqbench.search import write_result

    write_result(name, project.root / "params.yaml", {})


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """A real `prefect server start` on a free loopback port with its own PREFECT_HOME.

    Yields the environment (PREFECT_API_URL, PREFECT_HOME) for processes that use it.
    """
    import os
    import shutil
    import subprocess
    import sys
    import time
    import urllib.request

    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        # A run waiting for its deployment's concurrency slot asks again after this many seconds
        # (default 30), and new deployments are scheduled within 2 s: keeps the tests short.
        "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "5",
        "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "2",
    }
    env.pop("PREFECT_API_URL", None)
    prefect = shutil.which("prefect", path=os.path.dirname(sys.executable)) or "prefect"
    log = open(home / "server.log", "w")
    server = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180  # the first start migrates a new database
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"prefect server did not start: {(home / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    try:
        yield {"PREFECT_API_URL": url, "PREFECT_HOME": str(home)}
    finally:
        stop_process_group(server)
        log.close()


REPO = Path(__file__).resolve().parents[1]
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@t"}


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
    for name in ("dvc.yaml", ".gitignore", "data/README.md"):  # data/README.md: data/ as in a clone
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, root / name)
    for folder in ("src", "flows", "reports/setups"):  # reports/setups: the report stage's record of set-ups tried
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name, frame in files.items():
        frame.to_csv(root / name, index=False)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, **GIT_IDENTITY, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PREFECT_API_URL", None)
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "project"]):
        run_command(cmd, root, env)
    return env


# ---- the report in a real browser ---------------------------------------------------------------

ARTIFACTS = Path(os.environ.get("SEQBENCH_TEST_ARTIFACTS", REPO / "test-artifacts"))


def start_chromium(logs: dict | None = None):
    """Real headless Chromium (Debian's chromium and chromedriver) driven by Selenium, keeping the
    console log and whichever other logs `logs` asks for (e.g. {"performance": "ALL"})."""
    import shutil

    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.fail("the report tests need Debian's chromium and chromium-driver: run `make browser`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", **(logs or {})})
    return webdriver.Chrome(service=Service(chromedriver), options=options)


@pytest.fixture(scope="session")
def browser():
    driver = start_chromium()
    yield driver
    driver.quit()


def open_report(driver, path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    WebDriverWait(driver, 30).until(lambda d: d.find_elements("css selector", ".js-plotly-plot .main-svg"))


def check_in_browser(driver, path: Path, datasets: list[str], screenshot: str) -> None:
    """No console errors, every dataset section, rendered plots; a screenshot as an artefact."""
    open_report(driver, path)
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], errors
    for name in datasets:
        assert driver.find_elements("css selector", f"section#{name}.dataset"), name
    plots = driver.find_elements("css selector", ".js-plotly-plot .main-svg")
    assert len(plots) >= len(datasets)
    traces = driver.execute_script("return document.querySelectorAll('.js-plotly-plot g.trace').length")
    assert traces > 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1280, min(height, 16000))
    assert driver.save_screenshot(str(ARTIFACTS / screenshot))
    driver.set_window_size(1280, 900)




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


# ---- a tiny DVC project: one small stock dataset, two epochs ---------------------------------

TINY_DVC = {
    "train": {"seeds": [0], "max_epochs": 2, "hidden_size": 4, "batch_size": 32, "runner": "sequential"},
    "datasets": {"prices": {"kind": "stock", "source": "prices.csv", "symbol": "TOY", "lookback": 5}},
}


@pytest.fixture
def tiny_project(tmp_path):
    """A git + DVC repository with one small stock dataset; returns (root, env)."""
    root = tmp_path / "project"
    env = dvc_project(root, TINY_DVC, {"prices.csv": random_walk_prices(120)})
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    return root, env


# ---- a plain local file server -----------------------------------------------------------------

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
