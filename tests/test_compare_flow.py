"""The Prefect comparison flow on tiny data, under each task runner, against a real server."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def run_flow(project, prefect_server, **train):
    params = yaml.safe_load((project.root / "params.yaml").read_text())
    params["train"].update(train)
    (project.root / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, **prefect_server}
    return subprocess.run(
        [sys.executable, str(REPO / "flows/compare.py"), "toy", "--params", str(project.root / "params.yaml")],
        cwd=project.root, env=env, capture_output=True, text=True, timeout=600,
    )


def summary_of(project) -> dict:
    return json.loads((project.root / "reports/train/toy.json").read_text())


@pytest.mark.parametrize("runner", ["process", "dask"])
def test_flow_trains_every_cell_and_seed(prepared_stock, prefect_server, runner):
    result = run_flow(prepared_stock, prefect_server, runner=runner)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = summary_of(prepared_stock)
    assert set(summary["cells"]) == {"lstm", "gru"}
    assert all(cell["runs"] == 2 for cell in summary["cells"].values())
    assert summary["failed_runs"] == {}
    for cell in ("lstm", "gru"):
        for seed in (0, 1):
            assert (prepared_stock.root / f"models/toy/{cell}/seed{seed}/metrics.json").exists()
    # one concise progress line per epoch per run, no per-step spam
    epoch_lines = [line for line in result.stderr.splitlines() if " epoch " in line and "train " in line]
    assert len(epoch_lines) == 4 * 3
    curves = (prepared_stock.root / "reports/train/toy/learning_curves.csv").read_text().splitlines()
    assert curves[0] == "cell,seed,epoch,train_loss,val_loss,seconds" and len(curves) == 1 + 12
    assert (prepared_stock.root / "reports/train/toy/curves/gru.csv").exists()


def test_a_run_that_fails_for_good_fails_the_flow_and_keeps_the_others(prepared_stock, prefect_server):
    blocker = prepared_stock.root / "models/toy/gru/seed1"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the run folder should go")
    result = run_flow(prepared_stock, prefect_server, runner="sequential")
    assert result.returncode == 1
    assert "1 of 4 training runs of 'toy' failed: gru seed1" in result.stderr
    summary = summary_of(prepared_stock)
    assert summary["cells"]["lstm"]["runs"] == 2 and summary["cells"]["gru"]["runs"] == 1
    assert "gru seed1" in summary["failed_runs"]
