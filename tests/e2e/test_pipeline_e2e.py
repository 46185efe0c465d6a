"""The real pipeline: `dvc repro` in a temporary git repository on a small params file."""

import json
import subprocess
import sys

import pytest
import yaml

from chromium import check_in_browser
from helpers import assert_verdicts_agree, stock_frame, text_frame
from processes import dvc_project, run_command


def run(cmd, cwd, env):
    return run_command(cmd, cwd, env)


# A price series and a text set, small enough for a pipeline in about a minute.
TINY_DATASETS = {
    "prices": {"kind": "stock", "source": "prices.csv", "symbol": "TOY", "lookback": 5},
    "reviews": {
        "kind": "text",
        "source": {"train": "train.csv", "test": "test.csv"},
        "columns": {"text": "review", "label": "score"},
    },
}


def tiny_files() -> dict:
    return {"prices.csv": stock_frame(40), "train.csv": text_frame(30), "test.csv": text_frame(10)}


@pytest.fixture
def repo(tmp_path, prefect_server):
    """A git + DVC repo holding this project's pipeline, code and a small params file."""
    params = {
        "train": {
            "seeds": [0],
            "max_epochs": 2,
            "hidden_size": 4,
            "batch_size": 32,
            "workers": 2,
            "search": {"trials": 2, "space": {"learning_rate": {"low": 1e-3, "high": 1e-2, "log": True}}},
        },
        "datasets": {
            **TINY_DATASETS,
            "reviews": {**TINY_DATASETS["reviews"], "labels": ["great", "other"]},
            "gunpoint": {"kind": "video", "source": "aeon:GunPoint", "labels": ["1", "2"], "min_frames": 10},
        },
    }
    files = tiny_files()
    root = tmp_path / "repo"
    env = dvc_project(root, params, files)
    return root, {**env, **prefect_server}


def test_the_pipeline_flow_runs_everything_through_the_report(repo, browser):
    """`make run`'s command, without a Prefect server: one temporary server serves the flow and
    every training stage."""
    root, env = repo
    local = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    local["PREFECT_HOME"] = str(root.parent / "prefect-home")  # not the session server's database
    output = run([sys.executable, "flows/pipeline.py"], root, local)
    assert output.count("Stopping temporary server") == 1, output[-3000:]
    for name, rows in (("prices", 40), ("reviews", 40), ("gunpoint", 200 * 150)):
        assert f"Running stage 'train@{name}'" in output
        manifest = json.loads((root / f"data/raw/{name}.manifest.json").read_text())
        assert manifest["rows"] == rows and len(manifest["sha256"]) == 64
        report = json.loads((root / f"reports/validation/{name}.json").read_text())
        assert report["success"] and report["rows_validated"] == rows
        assert (root / f"data/validated/{name}.parquet").exists()
        assert (root / f"reports/validation/{name}/index.html").exists()
        search = json.loads((root / f"reports/search/{name}.json").read_text())
        for cell in ("lstm", "gru"):
            assert (root / f"models/{name}/runs/{cell}/seed0/model.pt").exists()
            assert len(search["cells"][cell]["trials"]) == 2  # the same budget for both cells
            config = json.loads((root / f"models/{name}/runs/{cell}/seed0/config.json").read_text())
            assert config["budget"]["learning_rate"] == search["cells"][cell]["config"]["learning_rate"]
        summary = json.loads((root / f"reports/train/{name}.json").read_text())
        assert set(summary["cells"]) == {"lstm", "gru"}
        evaluation = json.loads((root / f"reports/eval/{name}.json").read_text())
        assert {"lstm", "gru"} <= set(evaluation["models"]) and evaluation["baselines"]
        assert all(0 <= c["effect"]["p_value"] <= 1 for c in evaluation["comparisons"])
        assert evaluation["best_baseline"]["name"] in evaluation["baselines"]  # chosen on validation
        assert_verdicts_agree(evaluation)  # one of the four answers (or void), matching its interval and p
    assert "Running stage 'report'" in output
    check_in_browser(browser, root / "reports/index.html", ["prices", "reviews", "gunpoint"], "e2e-report.png")
    assert (root / "reports/plots/confusion/gunpoint/nn_dtw.csv").exists()
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    assert {
        "ingest@prices",
        "validate@gunpoint",
        "prepare@reviews",
        "search@prices",
        "train@gunpoint",
        "evaluate@reviews",
        "report",
    } <= set(lock["stages"])
    metrics = run(["dvc", "metrics", "show"], root, env)
    assert "reports/train/prices.json" not in metrics  # per-seed training numbers are not metrics
    assert "reports/metrics/reviews.json" in metrics and "gru_minus_lstm.p_holm" in metrics
    plots = run(["dvc", "plots", "show", "-o", str(root / "plots")], root, env)
    assert (root / "plots" / "index.html").exists(), plots

    # Nothing changed: DVC skips every stage (no stage is "always changed").
    again = run(["dvc", "repro"], root, env)
    assert "Running stage" not in again and "Stage 'ingest@prices' didn't change, skipping" in again
    assert "Data and pipelines are up to date" in run(["dvc", "status"], root, env)

    # Forced, as the README says after a source changed: the same source gives the same bytes,
    # so validation is skipped.
    forced = run(["dvc", "repro", "-f", "-s", "ingest@prices"], root, env)
    assert "Running stage 'ingest@prices'" in forced
    assert "Stage 'validate@prices' didn't change, skipping" in run(["dvc", "repro", "validate@prices"], root, env)

    # A changed source flows through to validation.
    stock_frame(41).to_csv(root / "prices.csv", index=False)
    run(["dvc", "repro", "-f", "-s", "ingest@prices"], root, env)
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


def test_dvc_exp_run_and_metrics_diff_compare_two_settings(tmp_path, prefect_server):
    """The metrics files are tracked by git (not ignored), so a committed run is the baseline
    that an experiment with another setting is compared against."""
    from helpers import random_walk_prices

    params = {
        "train": {"seeds": [0], "max_epochs": 2, "hidden_size": 4, "batch_size": 32, "runner": "sequential"},
        "datasets": {"prices": {"kind": "stock", "source": "prices.csv", "symbol": "TOY", "lookback": 5}},
    }
    root = tmp_path / "repo"
    env = dvc_project(root, params, {"prices.csv": random_walk_prices(120)})
    env.update(prefect_server)  # the session's server: no temporary one per flow and training stage
    run([sys.executable, "flows/pipeline.py"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "baseline"], root, env)
    tracked = run(["git", "ls-files", "reports"], root, env)
    assert "reports/metrics/prices.json" in tracked and "reports/train/prices.json" in tracked
    run(["dvc", "exp", "run", "-S", "train.hidden_size=6"], root, env)
    diff = run(["dvc", "metrics", "diff", "--all"], root, env)
    assert "reports/metrics/prices.json" in diff and "lstm.rmse" in diff
    shown = run(["dvc", "exp", "show", "--no-pager", "--csv"], root, env)
    assert "train.hidden_size" in shown and "gru_minus_lstm.rmse" in shown


def numbers_in(value) -> int:
    if isinstance(value, dict):
        return sum(numbers_in(v) for v in value.values())
    return int(isinstance(value, (int, float)) and not isinstance(value, bool))


def test_a_fresh_clone_runs_to_the_same_bytes(tmp_path, prefect_server):
    """A newcomer's `make run` (its flow) in a fresh clone of a project whose results are
    committed: everything trains again (no DVC cache), and leaves git clean, DVC up to date and
    `dvc metrics show` with a few numbers per dataset: measured times stay out of tracked files
    and out of dvc.lock (seqbench/timings.py)."""
    params = {
        "train": {"seeds": [0], "max_epochs": 2, "hidden_size": 4, "batch_size": 32, "runner": "sequential"},
        "datasets": TINY_DATASETS,  # the reviews' labels inferred
    }
    files = tiny_files()
    root = tmp_path / "repo"
    env = {**dvc_project(root, params, files), **prefect_server}
    run([sys.executable, "flows/pipeline.py"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "results"], root, env)

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(root), str(clone)], tmp_path, env)
    output = run([sys.executable, "flows/pipeline.py"], clone, env)
    assert "Running stage 'train@prices'" in output and "Running stage 'report'" in output  # no cache: all ran
    assert run(["git", "status", "--porcelain"], clone, env) == ""
    assert "Data and pipelines are up to date" in run(["dvc", "status"], clone, env)
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], clone, env))
    files = shown[""]["data"]
    assert set(files) == {"reports/metrics/prices.json", "reports/metrics/reviews.json"}
    assert all(0 < numbers_in(entry["data"]) <= 10 for entry in files.values()), files
    assert "gru_minus_lstm" in files["reports/metrics/reviews.json"]["data"]  # reads as named: gru − lstm
    # The times are measured all the same, beside the results, and the report shows them.
    times = json.loads((clone / "reports/timings/prices/evaluate.json").read_text())
    assert times["cost"]["lstm"]["train_seconds"]["mean"] > 0
    assert "training:" in (clone / "reports/index.html").read_text()
