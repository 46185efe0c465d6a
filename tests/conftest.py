"""Fixtures every test folder may use: a project folder, a prepared stock dataset, a real Prefect
server, a git + DVC repository. Test data lives in helpers.py, processes in processes.py.

Each test gets the marker of its folder (unit, stages, flows, e2e): `make test-fast` runs
the unit and stage tests, which need no server or browser.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from helpers import STOCK, TINY_TRAIN, Project, fixed_search, random_walk_prices
from processes import TINY_DVC, dvc_project, free_port, stop_process_group

FOLDERS = ("unit", "stages", "flows", "e2e")


def pytest_collection_modifyitems(items):
    tests = Path(__file__).parent
    for item in items:
        folder = item.path.relative_to(tests).parts[0]
        if folder in FOLDERS:
            item.add_marker(folder)


@pytest.fixture(autouse=True)
def no_secrets_from_other_tests():
    """The secrets a test's sources registered are masked for the rest of its process (as in a
    command's); a later test in the same worker must not inherit them (a source's query value
    such as "fraction" would mask "max_quarantine_fraction" in its messages)."""
    from seqbench import redact

    yield
    redact._known_secrets.clear()


@pytest.fixture
def project(tmp_path) -> Project:
    return Project(tmp_path)


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
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
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


@pytest.fixture
def tiny_project(tmp_path):
    """A git + DVC repository with one small stock dataset; returns (root, env)."""
    root = tmp_path / "project"
    env = dvc_project(root, TINY_DVC, {"prices.csv": random_walk_prices(120)})
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    return root, env
