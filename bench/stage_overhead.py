"""The fixed cost of a training stage: its wall time minus the time its tasks ran.

Runs the pipeline flow (flows/pipeline.py) on a tiny project (a 300-day toy stock series, 2
search trials and 1 seed per cell, 2 epochs: the stages' own work is small) twice, each in a
fresh temporary git + DVC repository, side by side in this one process:

- one pool: the pipeline starts its workers once and every stage uses them (what `make run` does);
- a pool per stage: each stage's task runner starts its own process pool, as before.

For each search@ and train@ stage, the fixed cost is the stage's wall time minus the span from
its flow's first task start to its last task end (read from the Prefect API): DVC's planning and
hashing, the stage's Python process and imports, its flow run, starting workers and their
imports. Target: at most 3 s per stage with one pool.

    python bench/stage_overhead.py
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the tests' tiny-project helpers
TRAINING = ("search@", "train@")
PARAMS = {
    "train": {
        "seeds": [0],
        "max_epochs": 2,
        "hidden_size": 8,
        "batch_size": 32,
        "workers": 2,
        "runner": "process",
        "search": {"trials": 2, "parallel": 2, "startup_trials": 2},
    },
    "datasets": {"prices": {"kind": "stock", "source": "prices.csv", "symbol": "TOY", "lookback": 5}},
}


def tiny_project(root: Path) -> None:
    from helpers import stock_frame
    from processes import dvc_project

    dvc_project(root, PARAMS, {"prices.csv": stock_frame(300)})


def task_spans(since) -> dict[str, float]:
    """'search@prices' -> seconds from the flow run's first task start to its last task end, for
    the flow runs that started after `since`."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterStartTime

    spans = {}
    with get_client(sync_client=True) as client:
        recent = FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since))
        for run in client.read_flow_runs(flow_run_filter=recent):
            dataset = (run.parameters or {}).get("dataset")
            tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
            times = [(t.start_time, t.end_time) for t in tasks if t.start_time and t.end_time]
            if dataset and times:
                first = min(start for start, _ in times)
                last = max(end for _, end in times)
                spans[f"{client.read_flow(run.flow_id).name}@{dataset}"] = (last - first).total_seconds()
    return spans


def run_pipeline(root: Path, one_pool: bool) -> list[dict]:
    """The workspace's pipeline flow, in this process; its stages with their fixed costs."""
    from seqbench.orchestration.prefect import prefect_api

    spec = importlib.util.spec_from_file_location("pipeline_flow", root / "flows" / "pipeline.py")
    flow_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flow_module)
    if not one_pool:
        flow_module.shared_pool = lambda train, root: contextlib.nullcontext()
    with prefect_api():  # from this process's folder, not the workspace: as `make suite` does
        since = datetime.now(timezone.utc)
        stages = flow_module.pipeline(params_path=str(root / "params.yaml"))
        spans = task_spans(since)
    for stage in stages:
        if stage["stage"].startswith(TRAINING) and stage["outcome"] == "ran":
            stage["tasks"] = spans.get(stage["stage"], 0.0)
            stage["fixed"] = stage["seconds"] - stage["tasks"]
    return stages


def main() -> None:
    import os

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, one_pool in (("a pool per stage", False), ("one pool", True)):
            root = Path(tmp) / label.replace(" ", "-")
            tiny_project(root)
            started = time.perf_counter()
            stages = run_pipeline(root, one_pool)
            results[label] = (time.perf_counter() - started, stages)
    print(f"\n{'stage':<18}" + "".join(f"{label + ': seconds':>30}" for label in results))
    for i, stage in enumerate(next(iter(results.values()))[1]):
        print(
            f"{stage['stage']:<18}" + "".join(f"{stages[i]['seconds'] or 0:>30.1f}" for _, stages in results.values())
        )
    print(f"\n{'stage':<18}" + "".join(f"{label + ': wall / tasks / fixed s':>44}" for label in results))
    names = [s["stage"] for s in next(iter(results.values()))[1] if "fixed" in s]
    for name in names:
        cells = []
        for _, stages in results.values():
            stage = next(s for s in stages if s["stage"] == name)
            cells.append(f"{stage['seconds']:>20.1f}{stage['tasks']:>12.1f}{stage['fixed']:>12.1f}")
        print(f"{name:<18}" + "".join(cells))
    for label, (wall, stages) in results.items():
        fixed = [s["fixed"] for s in stages if "fixed" in s]
        print(
            f"{label}: pipeline {wall:.1f} s; fixed cost per training stage: mean {sum(fixed) / len(fixed):.1f} s, "
            f"max {max(fixed):.1f} s (target <= 3 s with one pool)"
        )


if __name__ == "__main__":
    main()
