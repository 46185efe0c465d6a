"""The Prefect comparison flow on tiny data, under each task runner, against a real server."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seqbench.paths import Paths
from seqbench.timings import read_evaluation

REPO = Path(__file__).resolve().parents[2]


def run_flow(project, prefect_server, **train):
    params = yaml.safe_load((project.root / "params.yaml").read_text())
    params["train"].update(train)
    (project.root / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, **prefect_server}
    return subprocess.run(
        [sys.executable, str(REPO / "flows/train.py"), "toy", "--params", str(project.root / "params.yaml")],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
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
            assert (prepared_stock.root / f"models/toy/runs/{cell}/seed{seed}/metrics.json").exists()
    # one concise progress line per epoch per run, no per-step spam
    # (found anywhere in the text: two worker processes may write into one line of the pipe)
    import re

    epoch_lines = re.findall(r"toy (?:lstm|gru) seed\d epoch \d/3: train", result.stderr)
    assert len(epoch_lines) == len(set(epoch_lines)) == 4 * 3
    curves = (prepared_stock.root / "reports/train/toy/learning_curves.csv").read_text().splitlines()
    assert curves[0] == "cell,seed,epoch,train_loss,val_loss" and len(curves) == 1 + 12  # times: timings.json
    assert (prepared_stock.root / "reports/train/toy/curves/gru.csv").exists()


def test_a_run_that_fails_for_good_fails_the_flow_and_keeps_the_others(prepared_stock, prefect_server):
    blocker = prepared_stock.root / "models/toy/runs/gru/seed1"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the run folder should go")
    result = run_flow(prepared_stock, prefect_server, runner="sequential")
    assert result.returncode == 1
    assert "1 of 4 training runs of 'toy' failed: gru seed1" in result.stderr
    summary = summary_of(prepared_stock)
    assert summary["cells"]["lstm"]["runs"] == 2 and summary["cells"]["gru"]["runs"] == 1
    assert "gru seed1" in summary["failed_runs"]


def test_evaluate_scores_the_runs_and_baselines_on_the_test_split(prepared_stock, prefect_server):
    assert run_flow(prepared_stock, prefect_server, runner="sequential").returncode == 0
    result = prepared_stock.run("evaluate", "toy")
    assert result.exit_code == 0, result.output
    assert "lstm vs gru" in result.output and "Holm-adjusted p" in result.output
    evaluation = json.loads((prepared_stock.root / "reports/eval/toy.json").read_text())
    assert evaluation["comparisons"][0]["beside"]["loss_test"]["test"] == "Diebold-Mariano (HLN)"
    metrics = json.loads((prepared_stock.root / "reports/metrics/toy.json").read_text())
    assert {"lstm", "gru", "gru_minus_lstm"} <= set(metrics)  # the headline only: gru − lstm reads as named
    detail = json.loads((prepared_stock.root / "reports/eval/toy.json").read_text())
    assert detail["models"]["random_walk"]["scores"]["theils_u"] == 1.0  # the random walk against itself
    assert [(c["a"], c["b"]) for c in detail["comparisons"]][0] == ("lstm", "gru")
    assert len(detail["models"]["lstm"]["per_seed"]) == 2
    # The measured costs are kept apart from the results (timings.py); the readers merge them back.
    assert "seconds_per_sample" not in detail["cost"]["gru"]["latency"]["batch_1"]
    cost = read_evaluation(Paths(prepared_stock.root), "toy")["cost"]["gru"]
    assert cost["trainable_parameters"] > 0 and cost["latency"]["batch_1"]["seconds_per_sample"] > 0
    assert cost["peak_memory"]["peak_bytes"] is None or cost["peak_memory"]["peak_bytes"] >= 0
    predictions = (prepared_stock.root / "reports/eval/toy/predictions.csv").read_text().splitlines()
    assert len(predictions) - 1 == detail["sizes"]["test"]


def test_evaluate_without_trained_runs_says_what_to_run(prepared_stock):
    from helpers import assert_clean_failure

    assert_clean_failure(prepared_stock.run("evaluate", "toy"), "models/toy/runs/lstm/seed0", "dvc repro train@toy")


def test_one_worker_or_two_give_bit_identical_weights(prepared_stock, prefect_server, tmp_path):
    """Threads per run are a setting, not cores / workers: the number of runs at once must not
    change a single bit of any run's result."""
    import torch

    weights = {}
    for workers in (1, 2):
        result = run_flow(prepared_stock, prefect_server, runner="process", workers=workers)
        assert result.returncode == 0, result.stderr[-3000:]
        runs = prepared_stock.root / "models/toy/runs"
        weights[workers] = {
            str(path.relative_to(runs)): torch.load(path, weights_only=True)
            for path in sorted(runs.glob("*/seed*/model.pt"))
        }
        os.rename(runs, tmp_path / f"runs-{workers}")  # the second flow trains afresh
    assert len(weights[1]) == 4 and weights[1].keys() == weights[2].keys()
    for run, state in weights[1].items():
        assert all(torch.equal(state[k], weights[2][run][k]) for k in state), run
    metrics = json.loads((tmp_path / "runs-2/gru/seed0/metrics.json").read_text())
    assert metrics["threads"] == 1


def test_the_pipeline_pool_serves_the_stage_with_bit_identical_results(prepared_stock, prefect_server, tmp_path):
    """The pipeline's one pool of warm workers (orchestration/pool.py) trains exactly what a
    stage's own process pool trains; the stage connects to it instead of starting workers."""
    import torch

    from seqbench.config import load_params
    from seqbench.orchestration.pool import shared_pool
    from seqbench.orchestration.prefect import POOL_ADDRESS

    runs = prepared_stock.root / "models/toy/runs"
    own = run_flow(prepared_stock, prefect_server, runner="process", workers=2)
    assert own.returncode == 0, own.stderr[-3000:]
    os.rename(runs, tmp_path / "own-pool")
    train = load_params(prepared_stock.root / "params.yaml").train
    with shared_pool(train, prepared_stock.root) as address:
        assert address and os.environ[POOL_ADDRESS] == address
        with shared_pool(train, prepared_stock.root) as nested:
            assert nested is None  # one pool per run: a nested request reuses it
        from distributed import Client

        with Client(address, set_as_default=False) as client:  # the workers start in the workspace
            assert set(client.run(os.getcwd).values()) == {str(prepared_stock.root)}
        pooled = run_flow(prepared_stock, prefect_server, runner="process", workers=2)
    assert POOL_ADDRESS not in os.environ
    assert pooled.returncode == 0, pooled.stderr[-3000:]
    assert f"Connecting to an existing Dask cluster at {address}" in pooled.stderr + pooled.stdout
    for path in sorted((tmp_path / "own-pool").glob("*/seed*/model.pt")):
        mine, theirs = torch.load(path, weights_only=True), torch.load(runs / path.relative_to(tmp_path / "own-pool"))
        assert all(torch.equal(mine[k], theirs[k]) for k in mine), path


def test_a_sequential_or_remote_stage_does_not_use_the_pool(monkeypatch):
    from prefect.task_runners import ThreadPoolTaskRunner

    from seqbench.config import Training as Train
    from seqbench.orchestration.prefect import POOL_ADDRESS, task_runner

    monkeypatch.setenv(POOL_ADDRESS, "tcp://127.0.0.1:1")
    assert isinstance(task_runner(Train(runner="sequential")), ThreadPoolTaskRunner)
    remote = task_runner(Train(runner="dask", dask_address="tcp://10.0.0.1:8786"))
    assert remote.address == "tcp://10.0.0.1:8786"
    assert task_runner(Train(runner="process")).address == "tcp://127.0.0.1:1"
