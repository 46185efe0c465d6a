"""The search stage: equal-budget trials per cell, resume, determinism, and what it never reads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SPACE = {
    "learning_rate": {"low": 1e-3, "high": 3e-2, "log": True},
    "layers": [1, 2],
    "dropout": {"low": 0.0, "high": 0.3},
    "forget_bias": [None, 1.0],
    "param_budget": 200,
}


def set_params(project, **train):
    params = yaml.safe_load((project.root / "params.yaml").read_text())
    params["train"].update(train)
    (project.root / "params.yaml").write_text(yaml.safe_dump(params))


def run_script(project, script: str, prefect_server, *args):
    env = {**os.environ, **prefect_server}
    return subprocess.run(
        [sys.executable, str(REPO / script), "toy", "--params", str(project.root / "params.yaml"), *args],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def searched(project, prefect_server, trials: int = 3, runner: str = "sequential", **search) -> dict:
    set_params(
        project,
        size_match="params",
        runner=runner,
        search={"trials": trials, "parallel": 2, "startup_trials": 2, "prune_after": 1, "space": SPACE, **search},
    )
    result = run_script(project, "flows/search.py", prefect_server)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((project.root / "reports/search/toy.json").read_text())


def outcome(summary: dict) -> dict:
    """What a search decided, without its timings."""
    return {
        cell: [(t["number"], t["state"], t["value"], t["params"]) for t in entry["trials"]]
        for cell, entry in summary["cells"].items()
    }


def test_search_gives_both_cells_the_same_trials_and_never_reads_the_test_split(prepared_stock, prefect_server):
    # Poison the test split: a search that read it would see NaN losses and fail.
    prepared = prepared_stock.root / "data/prepared/toy/arrays.npz"
    arrays = dict(np.load(prepared))
    first_test_row = int(arrays["ends_test"].min())
    arrays["target"][first_test_row:] = np.nan
    arrays["features"][first_test_row:] = np.nan
    np.savez(prepared, **arrays)

    summary = searched(prepared_stock, prefect_server, trials=3)
    lstm, gru = summary["cells"]["lstm"], summary["cells"]["gru"]
    assert len(lstm["trials"]) == len(gru["trials"]) == 3
    assert all(t["value"] is not None and np.isfinite(t["value"]) for t in lstm["trials"] + gru["trials"])
    # Only the LSTM samples its forget-gate bias; both sample the rest of the same space.
    assert "forget_bias" in lstm["trials"][0]["params"] and "forget_bias" not in gru["trials"][0]["params"]
    assert {k for k in gru["trials"][0]["params"]} == {"learning_rate", "layers", "dropout"}
    # Each cell sized within the same budget (at this toy size one hidden unit is ~20% of it).
    for cell in (lstm, gru):
        assert cell["config"]["param_budget"] == 200 and 0.7 * 200 <= cell["parameters"] <= 200
        best = min((t for t in cell["trials"] if t["state"] == "complete"), key=lambda t: t["value"])
        assert cell["best_trial"] == best["number"]
        assert {k: cell["config"][k] for k in best["params"]} == best["params"]
        # How decisive: the best (up to) 3 complete trials' values, best first, and their spread.
        top = sorted(t["value"] for t in cell["trials"] if t["state"] == "complete")[:3]
        assert cell["top_trials"]["values"] == top and cell["top_trials"]["numbers"][0] == best["number"]
        assert cell["top_trials"]["spread"] == top[-1] - top[0]
    assert (prepared_stock.root / "models/toy/search/lstm.journal").exists()


def test_trials_run_in_parallel_give_the_same_search_and_training_reads_it(prepared_stock, prefect_server):
    sequential = searched(prepared_stock, prefect_server, trials=4)
    (prepared_stock.root / "models/toy/search/lstm.journal").unlink()
    (prepared_stock.root / "models/toy/search/gru.journal").unlink()
    parallel = searched(prepared_stock, prefect_server, trials=4, runner="process")
    assert outcome(parallel) == outcome(sequential)

    result = run_script(prepared_stock, "flows/train.py", prefect_server)
    assert result.returncode == 0, result.stderr[-3000:]
    for cell in ("lstm", "gru"):
        config = json.loads((prepared_stock.root / f"models/toy/runs/{cell}/seed0/config.json").read_text())
        chosen = parallel["cells"][cell]["config"]
        assert config["budget"]["learning_rate"] == chosen["learning_rate"]
        assert config["model"]["hparams"]["hidden_size"] == chosen["hidden_size"]


def test_a_search_resumes_and_a_changed_space_starts_over(prepared_stock, prefect_server):
    first = searched(prepared_stock, prefect_server, trials=2)
    more = searched(prepared_stock, prefect_server, trials=4)
    assert outcome(more)["lstm"][:2] == outcome(first)["lstm"]  # kept, not rerun
    # a killed search leaves a trial running; it is asked again and does not count
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    journal = prepared_stock.root / "models/toy/search/gru.journal"
    study = optuna.load_study(study_name="gru", storage=JournalStorage(JournalFileBackend(str(journal))))
    study.ask()
    resumed = searched(prepared_stock, prefect_server, trials=4)
    assert outcome(resumed) == outcome(more)

    changed = searched(prepared_stock, prefect_server, trials=2, seed=7)
    assert len(changed["cells"]["gru"]["trials"]) == 2
    assert outcome(changed)["gru"] != outcome(more)["gru"][:2]


def test_a_corrupt_study_starts_over_with_a_warning(prepared_stock, prefect_server):
    searched(prepared_stock, prefect_server, trials=2)
    (prepared_stock.root / "models/toy/search/lstm.journal").write_bytes(b"\x00not a journal{")
    set_params(prepared_stock, search={"trials": 2, "parallel": 2, "startup_trials": 2, "space": SPACE})
    result = run_script(prepared_stock, "flows/search.py", prefect_server)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "unreadable" in result.stderr and "starting the search over" in result.stderr
    summary = json.loads((prepared_stock.root / "reports/search/toy.json").read_text())
    assert len(summary["cells"]["lstm"]["trials"]) == 2


def test_no_trials_writes_the_fixed_budget(prepared_stock, prefect_server):
    set_params(prepared_stock, size_match="hidden", hidden_size=5, search={"trials": 0})
    result = run_script(prepared_stock, "flows/search.py", prefect_server)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((prepared_stock.root / "reports/search/toy.json").read_text())
    assert summary["trials"] == 0
    for cell in ("lstm", "gru"):
        assert summary["cells"][cell]["trials"] == [] and summary["cells"][cell]["config"]["hidden_size"] == 5
    assert list((prepared_stock.root / "models/toy/search").iterdir()) == []  # DVC's output, empty


@pytest.mark.parametrize(
    "search, fragments",
    [
        ({"trials": -1}, ["train.search.trials", "greater than or equal to 0"]),
        ({"trials": 1.5}, ["train.search.trials", "whole number"]),
        ({"trials": 2, "space": {"hiden_size": [4, 8]}}, ["hiden_size", "not a search key"]),
        ({"trials": 2, "space": {"learning_rate": {"low": 0.1, "high": 0.01}}}, ["learning_rate", "must be <= high"]),
        ({"trials": 2, "space": {"param_budget": 3}}, ["param_budget", "below the smallest"]),
    ],
)
def test_bad_search_settings_fail_cleanly(prepared_stock, prefect_server, search, fragments):
    set_params(prepared_stock, size_match="params", search=search)
    result = run_script(prepared_stock, "flows/search.py", prefect_server)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr[-2000:]
