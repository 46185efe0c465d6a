"""The pipeline's overhead: its wall time minus its training, as a share of the wall time.

Runs the pipeline flow that `make run` runs (flows/pipeline.py, after `make install`, which is
not counted) and times each DVC stage, as the flow does for its Prefect artifact. Training is
the search@ and train@ stages: they fit models and do nothing else. Everything else is the
overhead: the temporary Prefect server, DVC's planning and hashing, ingest, validation,
preparation, evaluation against the baselines, the report. Target: at most 15% of the wall time.

The training stages still start Python and a Prefect flow each; the runs' own fit seconds
(metrics.json) are printed beside them so that cost is visible too.

    python bench/pipeline_overhead.py                # a fresh clone of HEAD: every stage runs
    python bench/pipeline_overhead.py --workspace .  # here: only what DVC finds changed runs
    python bench/pipeline_overhead.py --keep /tmp/run  # a fresh clone, kept afterwards
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from stage_overhead import task_spans

REPO = Path(__file__).resolve().parents[1]
TRAINING = ("search@", "train@")


def run_pipeline(workspace: Path, params: Path = Path("params.yaml")) -> tuple[float, list[dict]]:
    """Run the workspace's own pipeline flow on `params` (relative to the workspace; a suite's
    suites/NAME/params.yaml runs that suite) in this process; (wall seconds, the stages)."""
    from seqbench.orchestration.prefect import prefect_api

    spec = importlib.util.spec_from_file_location("pipeline_flow", workspace / "flows" / "pipeline.py")
    flow_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flow_module)
    started = time.perf_counter()
    with prefect_api():
        since = datetime.now(timezone.utc)
        stages = flow_module.pipeline(params_path=str(workspace / params))
        spans = task_spans(since)
    for stage in stages:  # a training stage's fixed cost: its wall time beyond its tasks' span
        if stage["stage"] in spans and stage["outcome"] == "ran":
            stage["fixed"] = stage["seconds"] - spans[stage["stage"]]
    return time.perf_counter() - started, stages


def fit_seconds(workspace: Path) -> float:
    """The final runs' own fitting time, summed over runs (each ran on one worker slot)."""
    return sum(
        json.loads(path.read_text())["train_seconds"] for path in workspace.glob("models/*/runs/*/seed*/metrics.json")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, help="run here instead of in a fresh clone of HEAD")
    parser.add_argument("--keep", type=Path, help="clone into this new folder and keep it (its results, its report)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = args.workspace
        if workspace is None:
            workspace = args.keep or Path(tmp) / "seqbench"
            subprocess.run(["git", "clone", "-q", str(REPO), str(workspace)], check=True)
        wall, stages = run_pipeline(workspace.resolve())
        report(wall, stages, fit_seconds(workspace))


def report(wall: float, stages: list[dict], fitting: float) -> None:
    ran = [stage for stage in stages if stage["outcome"] == "ran"]
    training = sum(stage["seconds"] for stage in ran if stage["stage"].startswith(TRAINING))
    print(f"{'stage':<28}{'outcome':>9}{'seconds':>10}{'fixed s':>10}")
    for stage in stages:
        seconds = "" if stage["seconds"] is None else f"{stage['seconds']:.1f}"
        fixed = f"{stage['fixed']:.1f}" if "fixed" in stage else ""
        print(f"{stage['stage']:<28}{stage['outcome']:>9}{seconds:>10}{fixed:>10}")
    fixed = [stage["fixed"] for stage in stages if "fixed" in stage]
    if fixed:
        print(
            f"fixed cost of a training stage (wall time beyond its tasks' span): mean {sum(fixed) / len(fixed):.1f} s, "
            f"max {max(fixed):.1f} s (target <= 3 s)"
        )
    if not any(stage["stage"].startswith(TRAINING) for stage in ran):
        print("nothing was trained (DVC found it up to date): run without --workspace for a fresh clone")
        return
    overhead = wall - training
    print(f"\nwall time          {wall / 60:7.1f} min (this machine)")
    print(
        f"training stages    {training / 60:7.1f} min (search@ and train@), "
        f"the final runs' own fitting {fitting / 60:.1f} min summed over runs"
    )
    print(f"overhead           {overhead / 60:7.1f} min = {overhead / wall:.1%} of the wall time (target <= 15%)")


if __name__ == "__main__":
    sys.exit(main())
