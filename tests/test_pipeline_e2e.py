"""The real pipeline: `dvc repro` in a temporary git repository on a small params file."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import stock_frame, text_frame
from test_report import browser, check_in_browser  # noqa: F401 - browser is a fixture

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.e2e


def run(cmd, cwd, env):
    process = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, f"{cmd} failed:\n{process.stdout}\n{process.stderr}"
    return process.stdout + process.stderr


@pytest.fixture
def repo(tmp_path, prefect_server):
    """A git + DVC repo holding this project's pipeline, code and a small params file."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(REPO / "dvc.yaml", root)
    for folder in ("src", "flows"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    stock_frame(40).to_csv(root / "prices.csv", index=False)
    text_frame(30).to_csv(root / "train.csv", index=False)
    text_frame(10).to_csv(root / "test.csv", index=False)
    params = {
        "train": {"seeds": [0], "max_epochs": 2, "hidden_size": 4, "batch_size": 32, "workers": 2},
        "datasets": {
            "prices": {"kind": "stock", "source": "prices.csv", "symbol": "TOY", "lookback": 5},
            "reviews": {
                "kind": "text",
                "source": {"train": "train.csv", "test": "test.csv"},
                "columns": {"text": "review", "label": "score"},
                "labels": ["great", "other"],
            },
            "gunpoint": {"kind": "video", "source": "aeon:GunPoint", "labels": ["1", "2"], "min_frames": 10},
        }
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, **prefect_server,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run(["git", "init", "-q"], root, env)
    run(["dvc", "init", "-q"], root, env)
    run(["dvc", "config", "core.analytics", "false"], root, env)
    # A project is a clone with history; DVCLive refuses a git repository without commits.
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@t"}
    env.update(identity)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "project"], root, env)
    return root, env


def test_dvc_repro_runs_the_pipeline_through_the_report(repo, browser):
    root, env = repo
    output = run(["dvc", "repro"], root, env)
    for name, rows in (("prices", 40), ("reviews", 40), ("gunpoint", 200 * 150)):
        assert f"Running stage 'train@{name}'" in output
        manifest = json.loads((root / f"data/raw/{name}.manifest.json").read_text())
        assert manifest["rows"] == rows and len(manifest["sha256"]) == 64
        report = json.loads((root / f"reports/validation/{name}.json").read_text())
        assert report["success"] and report["rows_validated"] == rows
        assert (root / f"data/validated/{name}.parquet").exists()
        assert (root / f"reports/validation/{name}/index.html").exists()
        for cell in ("lstm", "gru"):
            assert (root / f"models/{name}/{cell}/seed0/model.pt").exists()
        summary = json.loads((root / f"reports/train/{name}.json").read_text())
        assert set(summary["cells"]) == {"lstm", "gru"}
        evaluation = json.loads((root / f"reports/eval/{name}.json").read_text())
        assert {"lstm", "gru"} <= set(evaluation["models"]) and evaluation["baselines"]
        assert all(0 <= c["test"]["p_value"] <= 1 for c in evaluation["comparisons"])
    assert "Running stage 'report'" in output
    check_in_browser(browser, root / "reports/index.html", ["prices", "reviews", "gunpoint"], "e2e-report.png")
    assert (root / "reports/plots/confusion/gunpoint/nn_dtw.csv").exists()
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    assert {"ingest@prices", "validate@gunpoint", "prepare@reviews", "train@gunpoint", "evaluate@reviews",
            "report"} <= set(lock["stages"])
    metrics = run(["dvc", "metrics", "show"], root, env)
    assert "reports/train/prices.json" in metrics and "cells.gru.mean_best_val_loss" in metrics
    assert "reports/metrics/reviews.json" in metrics and "lstm_vs_gru.p_value" in metrics
    plots = run(["dvc", "plots", "show", "-o", str(root / "plots")], root, env)
    assert (root / "plots" / "index.html").exists(), plots

    # Sources unchanged: ingest reruns (it cannot see them) but writes the same bytes, so
    # validation is skipped.
    again = run(["dvc", "repro"], root, env)
    assert "Stage 'validate@prices' didn't change, skipping" in again
    assert "Running stage 'validate@prices'" not in again
    assert "Running stage 'train@prices'" not in again
    assert "Running stage 'evaluate@prices'" not in again

    # A changed source flows through to validation.
    stock_frame(41).to_csv(root / "prices.csv", index=False)
    changed = run(["dvc", "repro", "validate@prices"], root, env)
    assert "Running stage 'validate@prices'" in changed
    assert json.loads((root / "reports/validation/prices.json").read_text())["rows"] == 41


def test_dvc_repro_stops_on_a_failed_validation(repo):
    root, env = repo
    frame = stock_frame(40)
    frame.loc[3:10, "volume"] = -1.0  # 20% bad rows, above the 5% default
    frame.to_csv(root / "prices.csv", index=False)
    process = subprocess.run(
        ["dvc", "repro", "validate@prices"], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    assert process.returncode != 0
    assert "volume_finite_non_negative" in process.stdout + process.stderr
    assert "Traceback" not in process.stdout + process.stderr
    assert not (root / "data/validated/prices.parquet").exists()
