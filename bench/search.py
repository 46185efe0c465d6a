"""Search benchmark: the search stage with its trials in parallel (the process runner, 2 workers)
against the same trials one after the other (the sequential runner), in this one run.

Target: speed-up >= 1.6x on 2 cores. Both searches must also decide the same: the same trials
sampled, the same ones pruned, the same validation losses (the search is built so that the
number of workers cannot change its result); the bench fails if they differ.

Runs on a prepared dataset of this project (default: sp500_returns; `dvc repro
prepare@sp500_returns` first), in a scratch folder, so the project's own studies and results
are untouched.

    python bench/search.py [--dataset sp500_returns] [--trials 4] [--epochs 8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "flows"))


def scratch_project(folder: Path, dataset: str, trials: int, epochs: int, runner: str) -> Path:
    """params.yaml in `folder` with the project's dataset, a small search, and `runner`; the
    prepared arrays linked, not copied."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"] = {dataset: params["datasets"][dataset]}
    params["datasets"][dataset].setdefault("train", {})["max_epochs"] = epochs
    params["train"].update(runner=runner, workers=2)
    params["train"]["search"].update(trials=trials)
    (folder / "data" / "prepared").mkdir(parents=True, exist_ok=True)
    link = folder / "data" / "prepared" / dataset
    if not link.exists():
        link.symlink_to(ROOT / "data" / "prepared" / dataset)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def timed_search(folder: Path, dataset: str, trials: int, epochs: int, runner: str) -> tuple[float, dict]:
    import shutil

    from search import search
    from seqbench.config import load_params
    from seqbench.orchestration.prefect import task_runner

    params_path = scratch_project(folder, dataset, trials, epochs, runner)
    shutil.rmtree(folder / "models", ignore_errors=True)  # a fresh study every time
    flow = search.with_options(task_runner=task_runner(load_params(params_path).train))
    started = time.perf_counter()
    summary = flow(dataset, str(params_path))
    return time.perf_counter() - started, summary


def decided(summary: dict) -> dict:
    return {
        cell: [(t["number"], t["state"], t["value"], t["params"]) for t in entry["trials"]]
        for cell, entry in summary["cells"].items()
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="sp500_returns")
    parser.add_argument("--trials", type=int, default=4, help="trials per cell (default 4)")
    parser.add_argument("--epochs", type=int, default=8, help="max epochs per trial (default 8)")
    parser.add_argument("--repeats", type=int, default=2, help="timed pairs; the median is printed (default 2)")
    args = parser.parse_args(argv)
    if min(args.trials, args.epochs, args.repeats) < 1:
        parser.error("--trials, --epochs and --repeats must be at least 1")
    if not (ROOT / "data" / "prepared" / args.dataset).is_dir():
        parser.error(f"data/prepared/{args.dataset} is missing: run `dvc repro prepare@{args.dataset}` first")

    from seqbench.orchestration.prefect import prefect_api

    ratios, times = [], {"sequential": [], "process": []}
    with tempfile.TemporaryDirectory() as scratch, prefect_api():
        for repeat in range(args.repeats):
            found = {}
            for runner in ("sequential", "process"):  # in turns: both see the same machine drift
                seconds, summary = timed_search(Path(scratch), args.dataset, args.trials, args.epochs, runner)
                times[runner].append(seconds)
                found[runner] = decided(summary)
            if found["sequential"] != found["process"]:
                print(json.dumps(found, indent=1), file=sys.stderr)
                raise SystemExit("the parallel search decided differently from the sequential one")
            ratios.append(times["sequential"][-1] / times["process"][-1])
            print(
                f"repeat {repeat + 1}: sequential {times['sequential'][-1]:.1f} s, "
                f"2 workers {times['process'][-1]:.1f} s, speed-up {ratios[-1]:.2f}x",
                flush=True,
            )
    speedup = statistics.median(ratios)
    print(f"\nsearch of {args.dataset}: {args.trials} trials per cell x 2 cells, <= {args.epochs} epochs each")
    print(f"  sequential (1 at a time)  median {statistics.median(times['sequential']):.1f} s")
    print(f"  process runner, 2 workers median {statistics.median(times['process']):.1f} s")
    print(f"  speed-up {speedup:.2f}x (target >= 1.6x); same trials, prunings and losses: yes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
