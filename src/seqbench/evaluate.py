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
import json
from pathlib import Path

from seqbench.errors import SeqbenchError
from seqbench.paths import Paths


def evaluate(name: str, params_path: Path | str = "params.yaml") -> dict:
    from seqbench.config import load_params, resolve_seeds
    from seqbench.kinds import get_kind
    from seqbench.prepare import load_prepared

    params_path = Path(params_path)
    params = load_params(params_path)
    cfg = params.dataset(name)
    paths = Paths(params_path.resolve().parent)
    arrays, meta = load_prepared(paths.prepared(name))
    cells, seeds = list(params.train.cells), resolve_seeds(params.train.seeds, meta["sizes"]["train"])
    runs = trained_runs(paths, name, cells, seeds)
    outputs = {run: test_outputs(run_dir, arrays, meta) for run, run_dir in runs.items()}
    kind = get_kind(cfg.kind)
    baselines = kind.baselines(arrays, meta, paths.validated(name))
    scorer = ForecastScorer(arrays, meta) if meta["task"] == "forecast" else ClassifierScorer(arrays, meta)
    result, predictions = assemble(name, cfg.kind, meta, scorer, outputs, baselines, cells, seeds)
    if hasattr(kind, "describe_test"):
        predictions.insert(0, "example", kind.describe_test(arrays, paths.validated(name)))
    result["cost"] = costs(runs, arrays, meta, paths.prepared(name), cells, seeds)
    write_outputs(paths, name, result, predictions)
    return result


def assemble(name: str, kind: str, meta: dict, scorer, outputs: dict, baselines: dict, cells: list, seeds: list):
    """(result, predictions table) from every run's and baseline's test outputs."""
    ensembles = {cell: combine_seeds([outputs[(cell, s)] for s in seeds]) for cell in cells}
    result = {"dataset": name, "kind": kind, "task": meta["task"], "sizes": meta["sizes"],
              "cells": cells, "seeds": seeds, "baselines": list(baselines), "labels": meta.get("labels")}
    result["models"] = score_models(scorer, outputs, ensembles, baselines, cells, seeds)
    result["comparisons"] = comparisons(scorer, result["models"], ensembles, baselines, cells)
    result["curves"] = {model: scorer.curves(out) for model, out in {**ensembles, **baselines}.items()}
    return result, scorer.predictions_table({**ensembles, **baselines})


def trained_runs(paths: Paths, name: str, cells: list, seeds: list) -> dict:
    """(cell, seed) -> run folder for every run params.yaml asks for; all must have finished."""
    runs = {(cell, seed): paths.run_dir(name, cell, seed) for cell in cells for seed in seeds}
    missing = [str(d.relative_to(paths.root)) for d in runs.values() if not (d / "metrics.json").exists()]
    if missing:
        raise SeqbenchError(f"{name}: unfinished training runs: {', '.join(missing)}; run `dvc repro train@{name}` first")
    return runs


def test_outputs(run_dir: Path, arrays: dict, meta: dict):
    """A run's outputs on the test split: scaled forecasts [N] or class probabilities [N, C]."""
    from seqbench.data import datasets_for
    from seqbench.predict import load_run, predict_outputs

    model, _ = load_run(run_dir)
    return predict_outputs(model, datasets_for(arrays, meta)["test"], meta["task"])


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
        summary = {metric: mean_ci([s[metric] for s in per_seed], (0.0, 1.0) if metric in BOUNDED else None)
                   for metric in scalar_metrics(per_seed[0])}
        models[cell] = {"baseline": False, "per_seed": per_seed, "summary": summary,
                        "ensemble": scorer.scores(ensembles[cell])}
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
    reads that. Classifiers also get "accuracy_test" (McNemar), reported but not deciding, and
    adjusted within its own family.
    """
    from seqbench.metrics import HIGHER_IS_BETTER, PRIMARY
    from seqbench.stats import difference_ci, holm, verdict

    metric = PRIMARY[scorer.task]
    higher = HIGHER_IS_BETTER[metric]
    pick = max if higher else min
    best_baseline = pick(baselines, key=lambda b: models[b]["scores"][metric])
    pairs = list(itertools.combinations(cells, 2)) + [(cell, best_baseline) for cell in cells]
    outputs = {**ensembles, **baselines}
    found = [{"a": a, "b": b, "metric": metric, "test": scorer.paired_test(outputs[a], outputs[b])} for a, b in pairs]
    if hasattr(scorer, "accuracy_test"):
        for comparison in found:
            comparison["accuracy_test"] = scorer.accuracy_test(outputs[comparison["a"]], outputs[comparison["b"]])
    for key in ("test", "accuracy_test"):  # all tests must exist before any can be adjusted
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
    """Per cell: training costs over the seeds (mean and CI) and measured inference costs."""
    from seqbench.cost import inference_latency, peak_training_memory
    from seqbench.data import datasets_for
    from seqbench.predict import load_run
    from seqbench.stats import mean_ci

    test_set = datasets_for(arrays, meta)["test"]
    found = {}
    for cell in cells:
        metrics = [json.loads((runs[(cell, s)] / "metrics.json").read_text()) for s in seeds]
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
            **{key: mean_ci([m[key] for m in metrics])
               for key in ("epochs_run", "best_epoch", "seconds_to_best", "train_seconds", "train_samples_per_second")},
            "latency": inference_latency(model, test_set, meta["task"]),
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


def write_outputs(paths: Paths, name: str, result: dict, predictions) -> None:
    from seqbench.io import atomic_path, write_json

    reports = paths.root / "reports"
    write_json(result, reports / "eval" / f"{name}.json")
    with atomic_path(reports / "eval" / name / "predictions.csv") as tmp:
        predictions.to_csv(tmp, index=False)
    write_json(headline(result), reports / "metrics" / f"{name}.json")
    write_confusion_plots(reports / "plots" / "confusion" / name, predictions, result)


def write_confusion_plots(folder: Path, predictions, result: dict) -> None:
    """One CSV per model with `actual` and `predicted`: DVC's confusion template reads these."""
    from seqbench.io import atomic_dir

    with atomic_dir(folder) as tmp:
        if result["task"] == "classify":
            for model in result["cells"] + result["baselines"]:
                table = predictions[["actual", model]].rename(columns={model: "predicted"})
                table.to_csv(tmp / f"{model}.csv", index=False)


class ForecastScorer:
    """Scores scaled forecasts as log returns and prices; pairs them with Diebold-Mariano."""

    task = "forecast"

    def __init__(self, arrays: dict, meta: dict):
        from seqbench.kinds.stock import forecast_truth

        self.meta = meta
        self.truth = forecast_truth(arrays, meta)

    def returns(self, output):
        return output * self.meta["target_std"] + self.meta["target_mean"]

    def scores(self, output) -> dict:
        from seqbench.metrics import forecast_metrics

        t = self.truth
        return forecast_metrics(t["actual_return"], self.returns(output), t["last_close"], t["actual_close"], t["naive_scale"])

    def paired_test(self, output_a, output_b) -> dict:
        from seqbench.stats import diebold_mariano

        actual = self.truth["actual_return"]
        return diebold_mariano(self.returns(output_a) - actual, self.returns(output_b) - actual, self.meta["horizon"])

    def curves(self, output) -> dict:
        return {}

    def predictions_table(self, outputs: dict):
        import numpy as np
        import pandas as pd

        t = self.truth
        table = pd.DataFrame({"symbol": t["symbol"], "date": t["date"], "actual_close": t["actual_close"],
                              "actual_return": t["actual_return"]})
        for model, output in outputs.items():
            table[f"{model}_return"] = self.returns(output)
            table[f"{model}_close"] = t["last_close"] * np.exp(table[f"{model}_return"])
        return table


class ClassifierScorer:
    """Scores class probabilities; pairs classifiers with a permutation test of macro-F1 (and McNemar)."""

    task = "classify"

    def __init__(self, arrays: dict, meta: dict):
        self.labels = arrays["labels"][arrays["idx_test"]]
        self.names = meta["labels"]

    def scores(self, output) -> dict:
        from seqbench.metrics import classification_metrics

        return classification_metrics(self.labels, output, len(self.names))

    def paired_test(self, output_a, output_b) -> dict:
        """The verdict's test: a paired permutation test of macro-F1 (the primary metric)."""
        from seqbench.stats import paired_permutation_f1

        return paired_permutation_f1(self.labels, output_a.argmax(axis=1), output_b.argmax(axis=1), len(self.names))

    def accuracy_test(self, output_a, output_b) -> dict:
        """McNemar's exact test of accuracy: reported beside the verdict's test, not deciding."""
        from seqbench.stats import mcnemar_exact

        return mcnemar_exact(output_a.argmax(axis=1) == self.labels, output_b.argmax(axis=1) == self.labels)

    def curves(self, output) -> dict:
        from seqbench.metrics import roc_points

        return {"roc": roc_points(self.labels, output, len(self.names))}

    def predictions_table(self, outputs: dict):
        import numpy as np
        import pandas as pd

        names = np.array(self.names, dtype=object)
        table = pd.DataFrame({"actual": names[self.labels]})
        for model, output in outputs.items():
            table[model] = names[output.argmax(axis=1)]
        return table
