"""A suite's training on 1 worker against 2 workers, side by side in one run. Target: >= 1.6x.

Every (dataset, cell, seed) run of the suite is trained as its train stages train them
(`flows/train.py DATASET`: the process runner, one torch thread per run as the suite sets),
once with `workers: 1` and once with `workers: 2`, in turns, in a scratch copy of the suite's
prepared data. One Prefect server serves both. Also timed: 1 worker given both cores
(`threads: 2`), what a run gets without the process pool; its numbers differ in the last bits
(thread count changes float sums), so it is a cost reference only.

Each train stage is also split into its runs' span (first run's start to last run's end, in the
worker pool) and the rest (starting Python and Prefect, the pool, the summary): the speed-up is
printed for both, since only the runs can share two workers.

Every arm trains the same runs from scratch with the same fixed budget (the search is skipped:
`search.trials: 0`, so every set validates on a holdout split, since k-fold needs a search), with
fewer epochs than the suite's own so the three arms take minutes.

Needs the suite prepared: `make suite` (or, in suites/<name>, `dvc repro prepare@<dataset>`).

    python bench/suite_scaling.py [--suite ucr] [--datasets GunPoint ...] [--epochs 5] [--repeats 1]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ARMS = {
    "1 worker": {"workers": 1, "threads": 1},
    "2 workers": {"workers": 2, "threads": 1},
    "1 worker, 2 threads": {"workers": 1, "threads": 2},
}


def scratch_workspace(suite: str, datasets: list[str] | None, epochs: int, scratch: Path) -> tuple[dict, list[str]]:
    """Copy the suite's prepared data into `scratch`; return its params (for epochs) and datasets."""
    workspace = REPO / "suites" / suite
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    chosen = datasets or params["suites"][suite]["datasets"]
    for name in chosen:
        prepared = workspace / "data" / "prepared" / name
        if not (prepared / "meta.json").exists():
            sys.exit(f"{prepared}: not prepared; run `make suite` first (or `dvc repro prepare@{name}` in {workspace})")
        shutil.copytree(prepared, scratch / "data" / "prepared" / name)
    fixed_budget(params, suite, epochs)
    return params, chosen


def fixed_budget(params: dict, suite: str, epochs: int) -> None:
    """No search, `epochs` epochs for every run, holdout validation: the same work in every arm.
    Set at every level a budget can come from (global, the suite's, each dataset's own: the
    innermost wins), and holdout because k-fold needs a search to choose each cell's epochs."""
    params["train"]["search"] = {"trials": 0}
    levels = [params["train"], params["suites"][suite].setdefault("train", {})]
    levels += [dataset.setdefault("train", {}) for dataset in params["datasets"].values()]
    for train in levels:
        train.update(max_epochs=epochs, patience=epochs)  # every run trains all its epochs
        train.pop("folds", None)
    for train in levels[1:]:
        train["validation"] = "holdout"


def stage(script: str, name: str, scratch: Path) -> None:
    process = subprocess.run(
        [sys.executable, str(REPO / "flows" / script), name, "--params", str(scratch / "params.yaml")],
        capture_output=True,
        text=True,
    )
    if process.returncode:
        sys.exit(f"flows/{script} {name} failed:\n{process.stderr[-3000:]}")


def train_suite(params: dict, arm: str, datasets: list[str], scratch: Path) -> dict[str, tuple[float, float]]:
    """Each dataset's train stage one after the other, as DVC runs them; per dataset, the
    stage's seconds and the span of its runs (first run's start to last run's end)."""
    params["train"].update(ARMS[arm])
    (scratch / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.rmtree(scratch / "models", ignore_errors=True)  # trained from scratch, never reused
    seconds = {}
    for name in datasets:
        started = time.perf_counter()
        stage("train.py", name, scratch)
        seconds[name] = (time.perf_counter() - started, runs_span(scratch / "models" / name / "runs"))
        print(
            f"{arm}: {name} trained in {seconds[name][0]:.1f} s (its runs: {seconds[name][1]:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
    return seconds


def runs_span(runs: Path) -> float:
    """From the first run's start (its config.json, written when its data and model are ready)
    to the last run's end (its metrics.json, written last): the stage's time in the worker pool.
    The rest of the stage (starting Python, the Prefect flow, the pool) is the same on 1 worker
    or 2."""
    starts = [path.stat().st_mtime for path in runs.glob("*/seed*/config.json")]
    ends = [path.stat().st_mtime for path in runs.glob("*/seed*/metrics.json")]
    return max(ends) - min(starts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="ucr")
    parser.add_argument("--datasets", nargs="+", help="a subset of the suite's datasets (default: all)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    from seqbench.orchestration.prefect import prefect_api

    with tempfile.TemporaryDirectory() as tmp, prefect_api():
        scratch = Path(tmp)
        params, datasets = scratch_workspace(args.suite, args.datasets, args.epochs, scratch)
        (scratch / "params.yaml").write_text(yaml.safe_dump(params))
        for name in datasets:
            stage("search.py", name, scratch)  # no trials: writes the fixed budget training reads
        times = {arm: [] for arm in ARMS}
        for _ in range(args.repeats):
            for arm in ARMS:
                times[arm].append(train_suite(params, arm, datasets, scratch))
    show(times, datasets, params, args)


def show(times: dict, datasets: list[str], params: dict, args) -> None:
    def total(arm, part):  # part 0: the stages, part 1: their runs' spans
        return statistics.median(sum(run[name][part] for name in datasets) for run in times[arm])

    seeds = params["train"]["seeds"]
    runs = len(params["train"].get("cells", ["lstm", "gru"])) * (seeds if isinstance(seeds, int) else len(seeds))
    print(
        f"suite {args.suite}: {len(datasets)} datasets x {runs} runs, {args.epochs} epochs each; "
        f"median of {args.repeats}, seconds on this machine (train stage / its runs' span)"
    )
    print(f"{'dataset':<24}" + "".join(f"{arm:>22}" for arm in ARMS))
    for name in datasets:
        cells = [[statistics.median(run[name][part] for run in times[arm]) for part in (0, 1)] for arm in ARMS]
        print(f"{name:<24}" + "".join(f"{f'{stage:.1f} / {span:.1f}':>22}" for stage, span in cells))
    print(f"{'total':<24}" + "".join(f"{f'{total(arm, 0):.1f} / {total(arm, 1):.1f}':>22}" for arm in ARMS))
    fixed = (total("1 worker", 0) - total("1 worker", 1)) / len(datasets)
    print(
        f"\nspeed-up, 2 workers over 1 worker:            {total('1 worker', 0) / total('2 workers', 0):.2f}x "
        f"the stages (target >= 1.6x), {total('1 worker', 1) / total('2 workers', 1):.2f}x their runs"
    )
    print(
        f"speed-up, 2 workers over 1 worker x 2 threads: "
        f"{total('1 worker, 2 threads', 0) / total('2 workers', 0):.2f}x the stages, "
        f"{total('1 worker, 2 threads', 1) / total('2 workers', 1):.2f}x their runs"
    )
    print(f"each train stage's own cost outside its runs (1 worker): {fixed:.1f} s, which more workers do not share")


if __name__ == "__main__":
    sys.exit(main())
