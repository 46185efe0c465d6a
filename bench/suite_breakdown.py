"""Where a suite's wall time goes: `make suite` from a fresh clone, every stage timed.

Runs what `make suite SUITE=<name>` runs (`seqbench suite-pipeline`, then the pipeline flow on
suites/<name>/params.yaml) in a fresh clone of HEAD, after `make install` (not counted), and
prints each dataset's stages (ingest ... evaluate) in seconds, the suite and report stages, the
share of each step, the runs still improving when their epochs ran out (none should be), and
the wall time against the suite's target. Targets (issue 24, 2 cores): ucr <= 45 min,
volatility <= 30 min.

    python bench/suite_breakdown.py --suite ucr                  # a fresh clone of HEAD, removed after
    python bench/suite_breakdown.py --suite ucr --keep /tmp/ucr  # kept: its results and report
    python bench/suite_breakdown.py --suite ucr --workspace .    # here: only what DVC finds changed runs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from pipeline_overhead import run_pipeline

REPO = Path(__file__).resolve().parents[1]
TARGET_MINUTES = {"ucr": 45, "volatility": 30}
STEPS = ("ingest", "validate", "prepare", "search", "train", "evaluate")


def still_improving(workspace: Path) -> list[str]:
    """'dataset/cell/seedN' for each final run cut off while still improving (runs.py cut_off)."""
    from seqbench.training.runs import still_improving as cut_off_while_improving

    found = []
    for metrics in sorted(workspace.glob("models/*/runs/*/seed*/metrics.json")):
        config = metrics.with_name("config.json")
        if cut_off_while_improving(json.loads(metrics.read_text()), json.loads(config.read_text())):
            found.append("/".join(metrics.parent.parts[-4:-3] + metrics.parent.parts[-2:]))
    return found


def table(stages: list[dict]) -> tuple[dict, dict]:
    """dataset -> step -> seconds, and the stages of no dataset (suite@..., report) -> seconds."""
    per_dataset, other = {}, {}
    for stage in stages:
        if stage["seconds"] is None:
            continue
        step, _, dataset = stage["stage"].partition("@")
        if step in STEPS:
            per_dataset.setdefault(dataset, {})[step] = stage["seconds"]
        else:
            other[stage["stage"]] = stage["seconds"]
    return per_dataset, other


def show(suite: str, wall: float, stages: list[dict], workspace: Path) -> None:
    per_dataset, other = table(stages)
    print(f"suite {suite}: seconds per stage on this machine ({os.cpu_count()} cores)")
    print(f"{'dataset':<24}" + "".join(f"{step:>10}" for step in STEPS) + f"{'total':>10}")
    for dataset, steps in per_dataset.items():
        cells = "".join(f"{steps[step]:>10.1f}" if step in steps else f"{'-':>10}" for step in STEPS)
        print(f"{dataset:<24}{cells}{sum(steps.values()):>10.1f}")
    totals = {step: sum(steps.get(step, 0.0) for steps in per_dataset.values()) for step in STEPS}
    row = "".join(f"{totals[step]:>10.1f}" for step in STEPS)
    print(f"{'all datasets':<24}{row}{sum(totals.values()):>10.1f}")
    for name, seconds in other.items():
        print(f"{name:<24}{seconds:>10.1f}")
    staged = sum(totals.values()) + sum(other.values())
    shares = ", ".join(f"{step} {totals[step] / wall:.0%}" for step in STEPS)
    print(f"\nshare of the wall time: {shares}; other stages {sum(other.values()) / wall:.0%}; "
          f"between stages (DVC, Prefect) {(wall - staged) / wall:.0%}")  # fmt: skip
    cut = still_improving(workspace)
    print(f"runs still improving when cut off: {len(cut)}" + (f" ({', '.join(cut)})" if cut else " (target: 0)"))
    target = TARGET_MINUTES.get(suite)
    goal = f" (target <= {target} min)" if target else ""
    print(f"wall time {wall / 60:.1f} min on this machine{goal}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="ucr")
    parser.add_argument("--workspace", type=Path, help="run here instead of in a fresh clone of HEAD")
    parser.add_argument("--keep", type=Path, help="clone into this new folder and keep it (its results, its report)")
    args = parser.parse_args()
    # The stages run `seqbench` from PATH, as `make suite` puts the venv first on it.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    with tempfile.TemporaryDirectory() as tmp:
        workspace = args.workspace
        if workspace is None:
            workspace = args.keep or Path(tmp) / "seqbench"
            subprocess.run(["git", "clone", "-q", str(REPO), str(workspace)], check=True)
        workspace = workspace.resolve()
        params = Path("suites") / args.suite / "params.yaml"
        if not (workspace / params).exists():
            sys.exit(f"{workspace / params}: no such suite (suites/ holds one folder per suite)")
        subprocess.run([sys.executable, "-m", "seqbench", "suite-pipeline", str(params)], cwd=workspace, check=True)
        wall, stages = run_pipeline(workspace, params)
        show(args.suite, wall, stages, workspace / params.parent)


if __name__ == "__main__":
    sys.exit(main())
