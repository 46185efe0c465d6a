"""The evaluate stage: every trained run and every baseline scored on the held-out test split.

Writes, for dataset D:
  reports/metrics/D.json          headline numbers (a DVC metrics file: `dvc metrics diff`)
  reports/eval/D.json             everything the report shows: scores with CIs, tests, verdicts, costs
  reports/eval/D/predictions.csv  test-set predictions of each model (seeds combined) and baseline
  reports/plots/confusion/D/      per model: actual and predicted class (`dvc plots show`;
                                  empty for forecasting)

The test split is used here only: training stops early on validation loss and never sees it.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from seqbench.errors import SeqbenchError
from seqbench.paths import Paths
from seqbench.training.runs import METRICS, read_run_metrics


def evaluate(name: str, params_path: Path | str = "params.yaml") -> dict:
    from seqbench.config import load_params, resolve_seeds
    from seqbench.kinds import get_kind
    from seqbench.training.prepared import load_prepared

    params_path = Path(params_path)
    params = load_params(params_path)
    cfg = params.dataset(name)
    paths = Paths(params_path.resolve().parent)
    prepared = load_prepared(paths.prepared(name))
    arrays, meta = prepared.arrays, prepared.meta
    cells, seeds = list(params.train.cells), resolve_seeds(params.train.seeds, meta["sizes"]["train"])
    runs = trained_runs(paths, name, cells, seeds)
    kind = get_kind(cfg.kind)
    scorer = kind.scorer(arrays, meta)
    outputs = {run: test_outputs(run_dir, arrays, meta) for run, run_dir in runs.items()}
    if scorer.calibrates:  # e.g. log variance -> variance, scaled on validation
        outputs = {
            run: scorer.calibrate(run, out, test_outputs(runs[run], arrays, meta, "val"))
            for run, out in outputs.items()
        }
    baselines = kind.baselines(arrays, meta, paths.validated(name))
    result, predictions = assemble(name, cfg.kind, meta, scorer, outputs, baselines, cells, seeds)
    mark_void(result["comparisons"], cells, void_reason([read_run_metrics(d) for d in runs.values()]))
    examples = kind.describe_test(arrays, paths.validated(name))
    if examples is not None:
        predictions.insert(0, "example", examples)
    result["cost"] = costs(runs, arrays, meta, paths.prepared(name), cells, seeds)
    confusion = scorer.confusion_tables(predictions, cells + list(baselines))
    write_outputs(paths, name, result, predictions, confusion)
    return result


def assemble(name: str, kind: str, meta: dict, scorer, outputs: dict, baselines: dict, cells: list, seeds: list):
    """(result, predictions table) from every run's and baseline's test outputs."""
    ensembles = {cell: combine_seeds([outputs[(cell, s)] for s in seeds]) for cell in cells}
    result = {
        "dataset": name,
        "kind": kind,
        "task": meta["task"],
        "sizes": meta["sizes"],
        "cells": cells,
        "seeds": seeds,
        "baselines": list(baselines),
        "labels": meta.get("labels"),
    }
    result["models"] = score_models(scorer, outputs, ensembles, baselines, cells, seeds)
    result["comparisons"] = comparisons(scorer, result["models"], ensembles, baselines, cells)
    result["curves"] = {model: scorer.curves(out) for model, out in {**ensembles, **baselines}.items()}
    context = scorer.context()  # what the scores are read against, e.g. the test period's up-day share
    if context is not None:
        result["context"] = context
    return result, scorer.predictions_table({**ensembles, **baselines})


def trained_runs(paths: Paths, name: str, cells: list, seeds: list) -> dict:
    """(cell, seed) -> run folder for every run params.yaml asks for; all must have finished."""
    runs = {(cell, seed): paths.run_dir(name, cell, seed) for cell in cells for seed in seeds}
    missing = [str(d.relative_to(paths.root)) for d in runs.values() if not (d / METRICS).exists()]
    if missing:
        raise SeqbenchError(
            f"{name}: unfinished training runs: {', '.join(missing)}; run `dvc repro train@{name}` first"
        )
    return runs


def test_outputs(run_dir: Path, arrays: dict, meta: dict, split: str = "test"):
    """A run's outputs on the test split (or `split`): scaled forecasts [N] or class probabilities [N, C]."""
    from seqbench.models import datasets_for
    from seqbench.training.predict import load_run, predict_outputs

    model, _ = load_run(run_dir)
    return predict_outputs(model, datasets_for(arrays, meta, (split,))[split])


def void_reason(run_metrics: list[dict]) -> str | None:
    """Why comparing the cells measures nothing, or None. It does when no run of any cell ended
    better on validation loss than its untrained model (best epoch 0): the cells are then
    compared as their untrained forecasts, which a trained model never replaced."""

    def improved(metrics: dict) -> bool:
        if "untrained_val_loss" in metrics:
            return metrics["best_val_loss"] < metrics["untrained_val_loss"]
        return metrics.get("best_epoch", 1) > 0

    if not run_metrics or any(improved(m) for m in run_metrics):
        return None
    return (
        f"no seed of either cell improved on its untrained model: best epoch 0 in all "
        f"{len(run_metrics)} runs, so both cells are compared as untrained models"
    )


def mark_void(found: list[dict], cells: list, reason: str | None) -> None:
    """Mark every cell-vs-cell comparison void (its test is kept, its verdict names no winner).
    Comparisons with baselines stay: how an untrained model fares against them is still true."""
    if reason is None:
        return
    for comparison in found:
        if comparison["a"] in cells and comparison["b"] in cells:
            comparison["void"] = reason
            comparison["verdict"] = {
                **comparison["verdict"],
                "winner": None,
                "void": True,
                "text": "void: neither cell learned beyond its untrained model",
            }


def combine_seeds(outputs: list):
    """The seeds' ensemble: the mean forecast, or the mean class probabilities."""
    import numpy as np

    return np.mean(np.stack(outputs), axis=0)


def score_models(scorer, outputs: dict, ensembles: dict, baselines: dict, cells: list, seeds: list) -> dict:
    """Per cell: each seed's scores, their mean and 95% CI, and the ensemble's scores.
    Per baseline (deterministic): its scores."""
    from seqbench.metrics import BOUNDED
    from seqbench.stats import mean_ci

    models = {}
    for cell in cells:
        per_seed = [scorer.scores(outputs[(cell, seed)]) for seed in seeds]
        summary = {
            metric: mean_ci([s[metric] for s in per_seed], (0.0, 1.0) if metric in BOUNDED else None)
            for metric in scalar_metrics(per_seed[0])
        }
        models[cell] = {
            "baseline": False,
            "per_seed": per_seed,
            "summary": summary,
            "ensemble": scorer.scores(ensembles[cell]),
        }
    for name, output in baselines.items():
        models[name] = {"baseline": True, "scores": scorer.scores(output)}
    return models


def scalar_metrics(scores: dict) -> list[str]:
    return [k for k, v in scores.items() if v is None or isinstance(v, float)]


def primary_value(model: dict, metric: str):
    """A model's headline value of `metric`: the mean over seeds, or the baseline's score."""
    return model["scores"][metric] if model["baseline"] else model["summary"][metric]["mean"]


def comparisons(scorer, models: dict, ensembles: dict, baselines: dict, cells: list) -> list[dict]:
    """The paired tests: every pair of cells, and each cell against the best baseline.

    The best baseline is the one with the best primary metric on the test split: choosing it on
    the test split can only favour the baseline, never the RNN.
    The dataset's tests are one family: each gets "p_holm", its Holm-adjusted p, and the verdict
    reads that. The scorer's extra tests (classifiers: "accuracy_test", McNemar; volatility
    forecasts: "squared_error_test", DM on the squared error of the log variance) are reported
    but not deciding, each adjusted within its own family.
    """
    from seqbench.metrics import HIGHER_IS_BETTER
    from seqbench.stats import difference_ci, holm, verdict

    metric = scorer.primary
    higher = HIGHER_IS_BETTER[metric]
    pick = max if higher else min
    best_baseline = pick(baselines, key=lambda b: models[b]["scores"][metric])
    pairs = list(itertools.combinations(cells, 2)) + [(cell, best_baseline) for cell in cells]
    outputs = {**ensembles, **baselines}
    found = [{"a": a, "b": b, "metric": metric, "test": scorer.paired_test(outputs[a], outputs[b])} for a, b in pairs]
    extras = [scorer.extra_tests(outputs[a], outputs[b]) for a, b in pairs]
    for comparison, extra in zip(found, extras):
        comparison.update(extra)
    families = ["test", *dict.fromkeys(key for extra in extras for key in extra)]
    for key in families:  # all tests must exist before any can be adjusted
        family = [comparison[key] for comparison in found if key in comparison]
        for test, adjusted in zip(family, holm([test["p_value"] for test in family])):
            test["p_holm"] = adjusted
    for comparison in found:
        a, b = comparison["a"], comparison["b"]
        means = (primary_value(models[a], metric), primary_value(models[b], metric))
        seeds_a = [s[metric] for s in models[a]["per_seed"]]
        seeds_b = [s[metric] for s in models[b]["per_seed"]] if not models[b]["baseline"] else [means[1]]
        comparison["effect"] = difference_ci(seeds_a, seeds_b)  # b minus a, in `metric`'s units
        comparison["verdict"] = verdict((a, b), comparison["test"], means, higher, comparison["effect"])
    return found


def costs(runs: dict, arrays: dict, meta: dict, prepared_dir: Path, cells: list, seeds: list) -> dict:
    """Per cell: training costs over the seeds (mean and CI), measured inference costs, the
    kernel torch ran each with, and the cell's own multiply-adds (which no kernel changes)."""
    from seqbench.models import datasets_for
    from seqbench.stats import mean_ci
    from seqbench.training.cost import cell_multiply_adds, inference_latency, peak_training_memory, training_kernel
    from seqbench.training.predict import load_run

    splits = datasets_for(arrays, meta)
    test_set = splits["test"]
    found = {}
    for cell in cells:
        metrics = [read_run_metrics(runs[(cell, s)]) for s in seeds]
        first = runs[(cell, seeds[0])]  # every seed has the same architecture
        model, config = load_run(first)
        batch_size = config["budget"]["batch_size"]  # the cell's own, from its search
        found[cell] = {
            "trainable_parameters": metrics[0]["trainable_parameters"],
            "hidden_size": model.hparams.hidden_size,
            "sized_parameters": model.sized_parameters(),
            "batch_size": batch_size,
            "threads": metrics[0].get("threads"),
            "checkpoint_bytes": metrics[0]["checkpoint_bytes"],
            "device": metrics[0]["device"],
            **{
                key: mean_ci([m[key] for m in metrics])
                for key in ("epochs_run", "best_epoch", "seconds_to_best", "train_seconds", "train_samples_per_second")
            },
            "multiply_adds": cell_multiply_adds(model, arrays, meta),
            "kernel": training_kernel(model, splits["train"], batch_size, metrics[0]["device"]),
            "latency": inference_latency(model, test_set),
            "peak_memory": peak_training_memory(str(first), str(prepared_dir), batch_size),
        }
    return found


def headline(result: dict) -> dict:
    """The DVC metrics file: plain numbers, one level per model, for `dvc metrics show/diff`."""
    numbers = {}
    for model, entry in result["models"].items():
        values = entry["scores"] if entry["baseline"] else {k: v["mean"] for k, v in entry["summary"].items()}
        numbers[model] = {k: round(v, 6) for k, v in values.items() if isinstance(v, float)}
    for comparison in result["comparisons"]:
        test = comparison["test"]
        numbers[f"{comparison['a']}_vs_{comparison['b']}"] = {
            "p_value": round(test["p_value"], 6),
            "p_holm": round(test.get("p_holm", test["p_value"]), 6),  # the p the verdict uses
            f"{comparison['metric']}_difference": round(comparison["effect"]["difference"], 6),
        }
    return numbers


def write_outputs(paths: Paths, name: str, result: dict, predictions, confusion: dict) -> None:
    from seqbench.io import atomic_path, write_json

    write_json(result, paths.evaluation(name))
    with atomic_path(paths.predictions(name)) as tmp:
        predictions.to_csv(tmp, index=False)
    write_json(headline(result), paths.headline(name))
    write_confusion_plots(paths.confusion(name), confusion)


def write_confusion_plots(folder: Path, tables: dict) -> None:
    """One CSV per model with `actual` and `predicted`, from the scorer's confusion tables
    (none for forecasts, so the folder stays empty): DVC's confusion template reads these."""
    from seqbench.io import atomic_dir

    with atomic_dir(folder) as tmp:
        for model, table in tables.items():
            table.to_csv(tmp / f"{model}.csv", index=False)
