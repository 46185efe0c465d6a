"""Collecting the comparison flow's runs: the per-dataset summary and learning curves.

Writes reports/train/<dataset>.json (the summary; a DVC metrics file),
reports/train/<dataset>/learning_curves.csv (every run, every epoch) and
reports/train/<dataset>/curves/<cell>.csv (validation loss averaged over seeds; DVC plots).
"""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path

from seqbench.errors import SeqbenchError
from seqbench.io import atomic_dir, atomic_path
from seqbench.paths import Paths


def remove_stale_runs(dataset: str, cells: list, seeds: list, params_path: Path) -> None:
    """Drop run folders of cells or seeds no longer in params.yaml (models/ persists across
    runs so that an interrupted run can resume)."""
    folder = Paths(params_path.resolve().parent).runs(dataset)
    wanted = {(c, f"seed{s}") for c in cells for s in seeds}
    for run in folder.glob("*/seed*"):
        if (run.parent.name, run.name) not in wanted:
            shutil.rmtree(run, ignore_errors=True)


def collect_runs(dataset: str, futures: dict, params_path: Path) -> dict:
    """Wait for every run, save what succeeded, then fail with the errors of those that didn't."""
    results, failures = [], {}
    for (cell, seed), future in futures.items():
        try:
            results.append(future.result())
        except Exception as exc:  # noqa: BLE001 - reported below, with the run it belongs to
            failures[f"{cell} seed{seed}"] = f"{type(exc).__name__}: {exc}"
    paths = Paths(params_path.resolve().parent)
    results = [with_still_improving(r, paths.run_dir(dataset, r["cell"], r["seed"])) for r in results]
    summary = summarize(dataset, results, failures)
    write_outputs(dataset, summary, results, paths)
    if failures:
        lines = "; ".join(f"{run}: {error}" for run, error in failures.items())
        raise SeqbenchError(f"{len(failures)} of {len(futures)} training runs of '{dataset}' failed: {lines}")
    return summary


def with_still_improving(metrics: dict, run_dir: Path) -> dict:
    """A finished run's metrics with "still_improving": whether it was cut off by max_epochs
    rather than early-stopped (training/runs.py `cut_off`), read from its config.json."""
    from seqbench.training.runs import read_run_config, still_improving

    return {**metrics, "still_improving": still_improving(metrics, read_run_config(run_dir))}


def summarize(dataset: str, results: list[dict], failures: dict) -> dict:
    """Per cell: its runs' means, and how many were still improving when their epochs ran out
    ("still_improving_runs"; each seed's own mark is in per_seed)."""
    cells = {}
    for cell in sorted({r["cell"] for r in results}):
        runs = sorted((r for r in results if r["cell"] == cell), key=lambda r: r["seed"])
        cells[cell] = {
            "runs": len(runs),
            "mean_best_val_loss": statistics.fmean(r["best_val_loss"] for r in runs),
            "mean_epochs_run": statistics.fmean(r["epochs_run"] for r in runs),
            "still_improving_runs": sum(bool(r.get("still_improving")) for r in runs),
            "mean_train_seconds": statistics.fmean(r["train_seconds"] for r in runs),
            "trainable_parameters": runs[0]["trainable_parameters"],
            "hidden_size": runs[0].get("hidden_size"),
            "sized_parameters": runs[0].get("sized_parameters"),
            "per_seed": {str(r["seed"]): {k: v for k, v in r.items() if k != "curves"} for r in runs},
        }
    return {"dataset": dataset, "cells": cells, "failed_runs": failures}


def write_outputs(dataset: str, summary: dict, results: list[dict], paths: Paths) -> None:
    import pandas as pd

    from seqbench.timings import split, write_stage

    folder = paths.train_curves(dataset)
    write_stage(paths, dataset, "train", summary, paths.train_summary(dataset))
    # The losses per epoch; each epoch's seconds stay in the run folder's timings.json (timings.py).
    results = [split(r)[0] for r in results]
    rows = [{"cell": r["cell"], "seed": r["seed"], **epoch} for r in results for epoch in r.get("curves", [])]
    curves = pd.DataFrame(rows, columns=["cell", "seed", "epoch", "train_loss", "val_loss"])
    with atomic_path(folder / "learning_curves.csv") as tmp:
        curves.sort_values(["cell", "seed", "epoch"]).to_csv(tmp, index=False)
    with atomic_dir(folder / "curves") as mean_dir:  # replaced as a whole, never left half empty
        for cell, part in curves.groupby("cell"):
            mean = part.groupby("epoch")[["train_loss", "val_loss"]].mean().reset_index()
            mean.to_csv(mean_dir / f"{cell}.csv", index=False)
