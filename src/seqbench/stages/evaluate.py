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
from seqbench.training.runs import METRICS, cut_off, read_run_config, read_run_metrics


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
    baselines = kind.baselines(arrays, meta, paths.validated(name))
    baselines_val = kind.baselines(arrays, meta, paths.validated(name), split="val")
    if scorer.calibrates:  # e.g. log variance -> variance: every model alike, fitted on validation
        outputs = {
            run: scorer.calibrate(run, out, test_outputs(runs[run], arrays, meta, "val"))
            for run, out in outputs.items()
        }
        baselines = {b: scorer.calibrate(b, out, baselines_val[b]) for b, out in baselines.items()}
        baselines_val = {b: scorer.calibrate(b, out, out) for b, out in baselines_val.items()}
    best = best_baseline(kind.scorer(arrays, meta, split="val"), baselines_val)
    rope = params.rope(name, scorer.primary)
    did_not_learn = cells_that_did_not_learn(runs, cells, seeds)
    improving = cells_still_improving(runs, cells, seeds)
    result, predictions = assemble(
        name, cfg.kind, meta, scorer, outputs, baselines, cells, seeds, best, rope, did_not_learn, improving
    )
    examples = kind.describe_test(arrays, paths.validated(name))
    if examples is not None:
        predictions.insert(0, "example", examples)
    result["cost"] = costs(runs, arrays, meta, paths.prepared(name), cells, seeds)
    confusion = scorer.confusion_tables(predictions, cells + list(baselines))
    write_outputs(paths, name, result, predictions, confusion)
    return result


def best_baseline(val_scorer, val_outputs: dict) -> dict:
    """The baseline with the best primary metric on the validation split, and every baseline's
    validation score: the test split plays no part in the choice, it only scores."""
    import math

    from seqbench.metrics import HIGHER_IS_BETTER

    metric = val_scorer.primary
    scores = {b: val_scorer.scores(out)[metric] for b, out in val_outputs.items()}
    usable = {b: v for b, v in scores.items() if v is not None and math.isfinite(v)}
    pick = max if HIGHER_IS_BETTER[metric] else min
    return {"name": pick(usable, key=usable.get), "metric": metric, "validation_scores": scores}


def assemble(
    name: str,
    kind: str,
    meta: dict,
    scorer,
    outputs: dict,
    baselines: dict,
    cells: list,
    seeds: list,
    best: dict,
    rope,
    did_not_learn: dict | None = None,
    still_improving: dict | None = None,
):
    """(result, predictions table) from every run's and baseline's test outputs. `did_not_learn`:
    cell -> reason, for the cells whose comparisons are void (cells_that_did_not_learn);
    `still_improving`: cell -> {"runs", "of", "reason"}, for the cells whose comparisons are at
    most undecided (cells_still_improving)."""
    ensembles = {cell: combine_seeds([outputs[(cell, s)] for s in seeds]) for cell in cells}
    result = {
        "dataset": name,
        "kind": kind,
        "task": meta["task"],
        "sizes": meta["sizes"],
        "cells": cells,
        "seeds": seeds,
        "baselines": list(baselines),
        "best_baseline": best,
        "labels": meta.get("labels"),
    }
    result["models"] = score_models(scorer, outputs, ensembles, baselines, cells, seeds)
    items = {cell: [scorer.primary_items(outputs[(cell, s)]) for s in seeds] for cell in cells}
    items.update({b: [scorer.primary_items(out)] for b, out in baselines.items()})
    result["rope"] = rope_width(rope, result["models"][best["name"]]["scores"][scorer.primary], scorer.primary)
    result["did_not_learn"] = did_not_learn or {}
    result["still_improving"] = still_improving or {}
    result["comparisons"] = comparisons(
        scorer,
        items,
        ensembles,
        baselines,
        cells,
        best["name"],
        result["rope"],
        result["did_not_learn"],
        result["still_improving"],
    )
    result["curves"] = {model: scorer.curves(out) for model, out in {**ensembles, **baselines}.items()}
    context = scorer.context()  # what the scores are read against, e.g. the test period's up-day share
    if context is not None:
        result["context"] = context
    return result, scorer.predictions_table({**ensembles, **baselines})


def rope_width(rope: tuple[float, bool], baseline_score: float | None, metric: str) -> dict:
    """The region of practical equivalence in the metric's units: a relative width times the best
    baseline's test score (its scale), or the width as it is."""
    value, relative = rope
    if relative and baseline_score is None:
        raise SeqbenchError(f"verdict.rope.{metric}: relative, but the best baseline has no {metric} score")
    width = value * abs(baseline_score) if relative else value
    return {"metric": metric, "width": width, "relative": value if relative else None}


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


def cells_that_did_not_learn(runs: dict, cells: list, seeds: list) -> dict:
    """Cell -> why it counts as not having learned, for each cell none of whose runs ended better
    on validation loss than its untrained model (best epoch 0; with k-fold, a cross-validated
    curve that never beat epoch 0). Such a cell's forecasts are its untrained model's."""
    found = {}
    for cell in cells:
        metrics = [read_run_metrics(runs[(cell, seed)]) for seed in seeds]
        if not any(improved(m) for m in metrics):
            found[cell] = (
                f"did not learn: no seed of {cell} ended better on validation loss than its untrained model "
                f"(best epoch 0 in all {len(metrics)} runs)"
            )
    return found


def improved(metrics: dict) -> bool:
    if "untrained_val_loss" in metrics:
        return metrics["best_val_loss"] < metrics["untrained_val_loss"]
    return metrics.get("best_epoch", 1) > 0


def mark_void(found: list[dict], did_not_learn: dict) -> None:
    """Mark every comparison that involves a cell that did not learn void: its numbers stay, its
    verdict names no winner (it would compare an untrained model, not the cell's recipe)."""
    for comparison in found:
        reasons = [did_not_learn[m] for m in (comparison["a"], comparison["b"]) if m in did_not_learn]
        if reasons:
            comparison["void"] = "; ".join(reasons)
            kept = {k: v for k, v in comparison["verdict"].items() if k not in ("reason", "seeds_to_decide")}
            comparison["verdict"] = {
                **kept,
                "answer": "void",
                "winner": None,
                "void": True,
                "text": "void: "
                + " and ".join(m for m in (comparison["a"], comparison["b"]) if m in did_not_learn)
                + " did not learn",
            }


def cells_still_improving(runs: dict, cells: list, seeds: list) -> dict:
    """Cell -> {"runs": k, "of": n, "reason"} for each cell with runs still improving when their
    epochs ran out (training/runs.py `cut_off`, from each run's metrics and config.json): the
    cell was cut off, not early-stopped, so how it compares may change with more epochs."""
    found = {}
    for cell in cells:
        marks = [cut_off(read_run_metrics(runs[(cell, s)]), read_run_config(runs[(cell, s)])) for s in seeds]
        marked = [m for m in marks if m is not None]
        if marked:
            found[cell] = {"runs": len(marked), "of": len(seeds), "reason": improving_reason(cell, marked, len(seeds))}
    return found


def improving_reason(cell: str, marked: list[dict], runs: int) -> str:
    """Why `cell`'s comparisons are at most undecided, and what to change."""
    first = marked[0]  # the seeds of a cell share its budget
    window = f"within the last {first['patience']} of {first['max_epochs']} epochs"
    if first["validation"] == "kfold":
        why = (
            f"{cell}'s cross-validation was still improving at max_epochs (the folds' mean validation loss "
            f"was lowest at epoch {first['best_epoch']}, {window}; all {runs} runs train to that epoch)"
        )
    else:
        were = "was" if len(marked) == 1 else "were"
        why = (
            f"{len(marked)} of {runs} {cell} runs {were} still improving at max_epochs "
            f"(best epoch {window}: cut off, not early-stopped)"
        )
    return why + ": raise train.max_epochs (or the dataset's own train.max_epochs)"


def cap_still_improving(found: list[dict], still_improving: dict) -> None:
    """Cap at "undecided" every comparison (not void) that involves a cell with runs still
    improving: neither a winner nor practical equivalence can be told from models whose training
    was cut off, as more epochs may move either side. The numbers and the Holm family stay as
    they are (the test was run; only its reading is held back); "uncapped" keeps the answer the
    numbers alone gave, and the reason says why and what to change."""
    for comparison in found:
        cells = [m for m in (comparison["a"], comparison["b"]) if m in still_improving]
        if not cells or comparison.get("void"):
            continue
        reasons = [still_improving[m]["reason"] for m in cells]
        comparison["still_improving"] = "; ".join(reasons)
        verdict = comparison["verdict"]
        uncapped = verdict.get("answer")
        if uncapped == "undecided" and verdict.get("reason"):
            reasons.append(f"besides, {verdict['reason']}")
        comparison["verdict"] = {
            **verdict,  # p and ROPE; an undecided verdict's seeds_to_decide
            "answer": "undecided",
            "winner": None,
            "text": f"undecided: {' and '.join(cells)} still improving",
            "reason": "; ".join(reasons),
            "uncapped": uncapped,
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


def comparisons(
    scorer,
    items: dict,
    ensembles: dict,
    baselines: dict,
    cells: list,
    best: str,
    rope: dict,
    did_not_learn: dict,
    still_improving: dict | None = None,
) -> list:
    """Every pair of cells, and each cell against the best baseline (chosen on validation).

    Each comparison's "effect" is b minus a from stats.paired_bootstrap (stats.VERDICT_RULE)
    with "p_holm", its p adjusted within the dataset's family; the verdict reads those and the
    ROPE. A comparison with a cell that did not learn is void (mark_void): it decides nothing, so
    it is left out of the family (its "p_holm" is None) and spends none of the others' level.
    A comparison with a cell still improving when its epochs ran out is at most undecided
    (cap_still_improving): it stays in the family, its verdict names no winner and no equivalence.
    "beside" holds the tests reported next to it, never deciding, each Holm-adjusted within its
    own family: forecasts, Diebold-Mariano on the seed-averaged loss series; classifiers, the
    seed ensembles' permutation test of macro-F1 and McNemar's test of accuracy.
    """
    from seqbench.metrics import HIGHER_IS_BETTER
    from seqbench.stats import paired_bootstrap, verdict

    metric, higher = scorer.primary, HIGHER_IS_BETTER[scorer.primary]
    pairs = list(itertools.combinations(cells, 2)) + [(cell, best) for cell in cells]
    outputs = {**ensembles, **baselines}
    found = []
    for a, b in pairs:
        block = block_length(scorer, items[a], items[b])
        try:
            effect = paired_bootstrap(items[a], items[b], scorer.primary_from_means, higher, block)
        except ValueError as exc:  # e.g. a NaN forecast: name the models, not "a" and "b"
            raise SeqbenchError(f"{a} vs {b}: {exc}".replace("model a:", f"{a}:").replace("model b:", f"{b}:"))
        beside = tests_beside(scorer, items[a], items[b], outputs[a], outputs[b])
        found.append({"a": a, "b": b, "metric": metric, "effect": effect, "beside": beside})
    deciding = [c for c in found if c["a"] not in did_not_learn and c["b"] not in did_not_learn]
    adjust(deciding, lambda c: c["effect"])
    for key in dict.fromkeys(k for c in found for k in c["beside"]):
        adjust([c for c in deciding if key in c["beside"]], lambda c, key=key: c["beside"][key])
    for c in found:
        p_holm = c["effect"].setdefault("p_holm", None)
        for test in c["beside"].values():
            test.setdefault("p_holm", None)
        if p_holm is not None:
            c["verdict"] = verdict((c["a"], c["b"]), c["effect"], p_holm, rope["width"], higher, len(deciding))
        else:
            c["verdict"] = {"p_value": None, "p_adjustment": "holm", "rope": rope["width"]}
    mark_void(found, did_not_learn)
    cap_still_improving(found, still_improving or {})
    return found


def adjust(found: list, test_of) -> None:
    """Holm-adjust the p-values of one family of tests in place ("p_holm")."""
    from seqbench.stats import holm

    for comparison, adjusted in zip(found, holm([test_of(c)["p_value"] for c in found])):
        test_of(comparison)["p_holm"] = adjusted


def block_length(scorer, items_a, items_b) -> float | None:
    """The bootstrap's expected block length for forecasts (from the seed-averaged loss
    differential), None for independent examples."""
    import numpy as np

    from seqbench.stats import block_length_for

    if not scorer.serial:
        return None
    return block_length_for(np.mean(items_a, axis=0)[:, 0], np.mean(items_b, axis=0)[:, 0])


def tests_beside(scorer, items_a, items_b, output_a, output_b) -> dict:
    """The tests reported beside the verdict, each saying what it compared."""
    import numpy as np

    from seqbench.stats import diebold_mariano

    found = {}
    if scorer.serial:
        losses = [np.mean(items, axis=0)[:, 0] for items in (items_a, items_b)]
        test = diebold_mariano(*losses, scorer.meta["horizon"], power=1)
        found["loss_test"] = {**test, "loss": scorer.loss, "on": "the seeds' mean loss per forecast"}
    for key, test in scorer.extra_tests(output_a, output_b).items():
        found[key] = {**test, "on": "the seed ensembles"}
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
    """The DVC metrics file, for `dvc metrics show/diff`: a few numbers a person compares across
    commits (nine with two cells). Each cell's and the best baseline's primary metric; per
    comparison its difference, named `<b>_minus_<a>` so that it reads the right way round, the
    Holm p its verdict used, and the verdict's answer. Everything else is in reports/eval."""
    metric = result["comparisons"][0]["metric"]
    numbers = {}
    for model in (*result["cells"], result["best_baseline"]["name"]):
        entry = result["models"][model]
        value = entry["scores"][metric] if entry["baseline"] else entry["summary"][metric]["mean"]
        numbers[model] = {metric: round(value, 6)}
    for comparison in result["comparisons"]:
        effect = comparison["effect"]
        numbers[f"{comparison['b']}_minus_{comparison['a']}"] = {
            metric: round(effect["difference"], 6),
            "p_holm": None if effect["p_holm"] is None else round(effect["p_holm"], 6),  # the verdict's p
            "verdict": verdict_word(comparison),
        }
    return numbers


def verdict_word(comparison: dict) -> str:
    """The verdict as a column of `dvc metrics show` reads: "gru better", "equivalent", "undecided", "void"."""
    if comparison.get("void"):
        return "void"
    verdict = comparison["verdict"]
    return f"{verdict['winner']} better" if verdict.get("winner") else verdict["answer"]


def write_outputs(paths: Paths, name: str, result: dict, predictions, confusion: dict) -> None:
    from seqbench.io import atomic_path, write_json
    from seqbench.timings import write_stage

    write_stage(paths, name, "evaluate", result, paths.evaluation(name))  # its measured costs apart (timings.py)
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
