"""Evaluations, searches and costs made up for the report tests: each dataset's files as the
evaluate, search and train stages write them, with known numbers, and text that tries to run as
HTML. No model is trained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from seqbench.kinds import stock
from seqbench.kinds.classify import ClassifierScorer
from seqbench.stages.evaluate import assemble

SCRIPT = "<script>alert(1)</script>"


IMAGE = "<img src=x onerror=\"document.title='pwned'\">"


CELLS, SEEDS = ["lstm", "gru"], [0, 1]


# Per cell: (its multiply-adds per step, the kernel its training step ran, the kernels of the
# timed batch 1 and batch 256). The LSTM fused throughout; the GRU's loop; on a CPU.
WORK = {
    "lstm": (4 * 33 * (4 + 33), "oneDNN fused LSTM", ("oneDNN fused LSTM", "oneDNN fused LSTM")),
    "gru": (3 * 38 * (4 + 38), "torch step-by-step loop", ("torch step-by-step loop", "torch step-by-step loop")),
}


LOOKBACK = 30


def fake_cost() -> dict:
    """The shape evaluate.costs() writes; the real measurement is tested with real runs."""
    ci = {"mean": 1.0, "low": 0.5, "high": 1.5, "n": 2}
    found = {}
    for cell in CELLS:
        per_step, kernel, (kernel_1, kernel_256) = WORK[cell]
        found[cell] = {
            "trainable_parameters": 1234,
            "checkpoint_bytes": 4096,
            "device": "cpu",
            "epochs_run": ci,
            "best_epoch": ci,
            "seconds_to_best": ci,
            "train_seconds": ci,
            "train_samples_per_second": ci,
            "multiply_adds": {
                "per_step": per_step,
                "per_sequence": per_step * LOOKBACK,
                "sequence_length": float(LOOKBACK),
                "sequence_length_from": "lookback",
                "counts": "recurrent weight multiply-adds",
            },
            "kernel": {"name": kernel, "packed": False, "device": "cpu", "observed": True},
            "latency": {
                "batch_1": {"seconds_per_sample": 2e-4, "batch": 1, "kernel": kernel_1, "packed": False},
                "batch_256": {"seconds_per_sample": 1e-5, "batch": 256, "kernel": kernel_256, "packed": False},
            },
            "peak_memory": {"peak_bytes": 2**20, "measure": "CPU peak resident growth"},
        }
    return found


# A search file's trials per cell: (validation loss, pruned?), in trial order.
# lstm's trial 4 was pruned at a loss below every complete trial's: the best so far must ignore it.
TRIALS = {
    "lstm": [(0.74, False), (0.9, True), (0.71, False), (0.8, False), (0.65, True), (0.70, False)],
    "gru": [(0.78, False), (0.69, False), (0.88, True), (0.72, False), (0.75, False), (0.73, False)],
}


CHOSEN = {
    "lstm": {"hidden_size": 33, "parameters": 4987, "wall_seconds": 41.2},
    "gru": {"hidden_size": 38, "parameters": 4990, "wall_seconds": 38.7},
}


def fake_search(name: str, searched: bool = True) -> dict:
    """The shape the search@<dataset> stage writes to reports/search/<dataset>.json; data-derived
    text (a trial's parameter, a configured value) carries markup that must stay inert."""
    space = {"learning_rate": {"low": 0.0001, "high": 0.01, "log": True}, "layers": [1, 2], "param_budget": 5000}
    cells = {}
    for cell, chosen in CHOSEN.items():
        trials = (
            [
                {
                    "number": i,
                    "state": "pruned" if pruned else "complete",
                    "value": value,
                    "params": {"learning_rate": 0.001 * (i + 1), "layers": 1 + i % 2, "note": IMAGE},
                    "hidden_size": chosen["hidden_size"],
                    "parameters": chosen["parameters"],
                    "epochs": 3 if pruned else 12,
                    "seconds": 1.5,
                    "val_losses": [value + 0.1, value],
                }
                for i, (value, pruned) in enumerate(TRIALS[cell])
            ]
            if searched
            else []
        )
        best = min((t for t in trials if t["state"] == "complete"), key=lambda t: t["value"], default=None)
        config = {
            "max_epochs": 30,
            "patience": 5,
            "batch_size": 128,
            "learning_rate": 0.001,
            "layers": 1,
            "hidden_size": chosen["hidden_size"],
            "param_budget": 5000,
            "embedding_size": 64,
            "pooling": SCRIPT,
            "bidirectional": False,
            "size_match": "params",
            "validation": "holdout",
            "folds": 5,
        }
        cells[cell] = {
            "config": config,
            "parameters": chosen["parameters"],
            "best_trial": best and best["number"],
            "best_value": best and best["value"],
            "wall_seconds": chosen["wall_seconds"] if searched else 0,
            "trials": trials,
        }
    return {
        "dataset": name,
        "trials": len(TRIALS["lstm"]) if searched else 0,
        "size_match": "params",
        "sampler": {"name": "TPESampler", "seed": 0, "startup_trials": 4},
        "pruner": {"name": "MedianPruner", "startup_trials": 2, "warmup_epochs": 3} if searched else None,
        "space": space,
        "cells": cells,
    }


def write_dataset(
    root: Path, name: str, result: dict, predictions: pd.DataFrame, columns=("close",), searched: bool = True
) -> None:
    result["cost"] = fake_cost()
    (root / "reports/search").mkdir(parents=True, exist_ok=True)
    (root / "reports/search" / f"{name}.json").write_text(json.dumps(fake_search(name, searched)))
    (root / "reports/eval" / name).mkdir(parents=True)
    (root / "reports/eval" / f"{name}.json").write_text(json.dumps(result, default=str))
    predictions.to_csv(root / "reports/eval" / name / "predictions.csv", index=False)
    curves = pd.DataFrame(
        [
            {"cell": c, "seed": s, "epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e + s / 100, "seconds": 0.1}
            for c in CELLS
            for s in SEEDS
            for e in range(1, 6)
        ]
    )
    (root / "reports/train" / name).mkdir(parents=True)
    curves.to_csv(root / "reports/train" / name / "learning_curves.csv", index=False)
    docs = root / "reports/validation" / name
    docs.mkdir(parents=True)
    (docs / "index.html").write_text("<html><body>Data Docs</body></html>")
    validation = {
        "success": True,
        "rows_validated": 100,
        "rows_quarantined": 1,
        "quarantine_fraction": 0.01,
        "checks": [{"check": f"{columns[0]}_not_null", "level": "row", "success": False, "unexpected_count": 1}],
    }
    (root / "reports/validation" / f"{name}.json").write_text(json.dumps(validation))


def stock_evaluation(rng) -> tuple[dict, pd.DataFrame]:
    n = 120
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n + 1)))
    target = np.diff(np.log(close))
    arrays = {
        "target": np.append(target, np.nan).astype("float32"),
        "close": close,
        "date": pd.date_range("2020-01-01", periods=n + 1).to_numpy().astype("int64"),
        "symbol": np.array(["TOY"] * (n + 1)),
        "ends_train": np.arange(0, 80),
        "ends_test": np.arange(80, n),
    }
    meta = {
        "task": "forecast",
        "target_mean": 0.0,
        "target_std": 1.0,
        "horizon": 1,
        "sizes": {"train": 80, "val": 0, "test": 40},
    }
    outputs = {(c, s): rng.normal(0, 0.01, 40) for c in CELLS for s in SEEDS}
    baselines = {"random_walk": np.zeros(40), "ridge_ar": rng.normal(0, 0.005, 40)}
    best = {"name": "ridge_ar", "metric": "rmse", "validation_scores": {"random_walk": 0.011, "ridge_ar": 0.010}}
    scorer = stock.scorer(arrays, meta)
    return assemble("prices", "stock", meta, scorer, outputs, baselines, CELLS, SEEDS, best, (0.01, True))


def text_evaluation(rng, still_improving: dict | None = None) -> tuple[dict, pd.DataFrame]:
    """LSTM right on every review, GRU wrong on every one. `still_improving`: cell ->
    {"runs", "of", "reason"}, as evaluate.cells_still_improving finds them."""
    labels = np.array([0, 1] * 20)
    arrays = {"labels": labels, "idx_test": np.arange(40)}
    meta = {"task": "classify", "labels": ["<b>great</b>", "other"], "sizes": {"train": 60, "val": 10, "test": 40}}
    confident = np.eye(2)[labels] * 0.8 + 0.1
    outputs = {("lstm", s): confident.copy() for s in SEEDS}
    outputs.update({("gru", s): confident[:, ::-1].copy() for s in SEEDS})  # every answer flipped
    baselines = {"majority": np.full((40, 2), 0.5)}
    best = {"name": "majority", "metric": "macro_f1", "validation_scores": {"majority": 0.33}}
    scorer = ClassifierScorer(arrays, meta)
    result, predictions = assemble(
        "reviews", "text", meta, scorer, outputs, baselines, CELLS, SEEDS, best, (0.01, False), None, still_improving
    )
    examples = [SCRIPT, IMAGE] + [f"review {i}" for i in range(38)]
    predictions.insert(0, "example", examples)
    return result, predictions


def report_project(root: Path) -> Path:
    """A project with two datasets' stage outputs: prices searched, reviews with no search."""
    import yaml

    params = {
        "datasets": {
            "prices": {"kind": "stock", "source": "prices.csv"},
            "reviews": {"kind": "text", "source": "reviews.csv", "labels": ["<b>great</b>", "other"]},
        },
        "train": {"threads": 2},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    rng = np.random.default_rng(0)
    write_dataset(root, "prices", *stock_evaluation(rng))
    write_dataset(root, "reviews", *text_evaluation(rng), columns=("text",), searched=False)
    (root / "reports/setups").mkdir(parents=True, exist_ok=True)
    (root / "reports/setups/reviews.yaml").write_text(yaml.safe_dump(SETUPS, sort_keys=False))
    return root / "params.yaml"


# A record of set-ups tried on reviews (reports/setups/reviews.yaml); its text stays inert.
SETUPS = {
    "metric": "macro_f1",
    "measured": "today",
    "setups": [
        {
            "setup": f"learned {SCRIPT}",
            "changes": {"embeddings": "learned", "train": {"param_budget": 60000}},
            "scores": {"lstm": 0.743, "gru": 0.724, "tfidf_logreg": 0.789},
        },
        {"setup": "frozen", "changes": {"embeddings_trainable": False}, "scores": {"lstm": 0.719, "gru": 0.709}},
    ],
}
