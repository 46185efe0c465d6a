"""What each part of the report shows, shaped from the stages' files: one dict per dataset
section (numbers, figures, validation, search), the summary's forest rows and dot strips.
HTML lives in the template, Plotly in figures.py.
"""

from __future__ import annotations

from pathlib import Path

from seqbench.errors import SeqbenchError
from seqbench.io import read_stage_json
from seqbench.paths import Paths
from seqbench.stages.report import figures
from seqbench.stages.report.formatting import format_seconds, format_value
from seqbench.timings import read_evaluation, read_search, read_stage


def dataset_section(paths: Paths, name: str, report_dir: Path, dataset=None) -> dict:
    """Everything one dataset's section shows: numbers, figures, validation, search. `dataset`:
    its settings from params.yaml (which of the training settings apply to it)."""
    import pandas as pd

    result = read_evaluation(paths, name)  # with its measured costs (timings.py)
    validation = read_stage_json(paths.validation_report(name), f"validate@{name}")
    search = search_section(paths, name, lambda key, config: setting_applies(key, config, result, dataset))
    predictions = read_predictions(paths.predictions(name), result)
    result, predictions = named_classes(result, predictions, getattr(dataset, "label_names", None))
    curves = pd.read_csv(paths.train_curves(name) / "learning_curves.csv")
    primary = result["comparisons"][0]["metric"]
    return {
        "name": name,
        "result": result,
        "primary": primary,
        "metric_names": metric_names(result),
        "plots": {
            **dataset_plots(result, predictions, curves),
            "seeds": figures.seed_strip(seed_strip(result, primary)),
        },
        "validation": validation,
        "data_docs": link(paths.data_docs(name) / "index.html", report_dir),
        "files": {
            "evaluation": link(paths.evaluation(name), report_dir),
            "predictions": link(paths.predictions(name), report_dir),
        },
        "disagreements": disagreements(predictions, result),
        "summary": summary_row(result),
        "forest": forest_panel(name, result),
        "search": search,
        "setups": setups_section(paths, name),
        "hidden_sizes": hidden_sizes(result, search),
        "cost_work": cost_work(result),
        "cost_ratios": cost_table_ratios(result),
    }


def link(path: Path, report_dir: Path) -> str | None:
    """`path` relative to the report's folder, as a link's href; None when there is no such file."""
    import os

    return Path(os.path.relpath(path, report_dir)).as_posix() if path.exists() else None


def read_predictions(path: Path, result: dict):
    """The predictions table; a classifier's classes read as the names it wrote, never as
    numbers (labels such as "1" and "2" stay text: the class names, not codes)."""
    import pandas as pd

    classes = ["actual", *result["cells"], *result["baselines"]] if result.get("labels") else []
    predictions = pd.read_csv(path, dtype={column: str for column in classes})
    if "date" in predictions:  # forecasts name each test window by its date
        predictions["date"] = pd.to_datetime(predictions["date"])
    return predictions


def named_classes(result: dict, predictions, names: dict | None):
    """The classes as the reader knows them (params.yaml's `label_names`, e.g. "1" -> "gun") in
    every table and figure: the labels in the result and the predicted classes."""
    if not names or not result.get("labels"):
        return result, predictions
    result = {**result, "labels": [names.get(label, label) for label in result["labels"]]}
    columns = [c for c in ("actual", *result["cells"], *result["baselines"]) if c in predictions]
    return result, predictions.assign(**{c: predictions[c].map(lambda v: names.get(v, v)) for c in columns})


def dataset_plots(result: dict, predictions, curves) -> dict:
    """The learning curves, and the figures the dataset's kind asks for (kinds' report_figures)."""
    from seqbench.kinds import get_kind

    plots = {"learning_curves": figures.learning_curves(curves)}
    for figure, options in get_kind(result["kind"]).report_figures(result.get("context")).items():
        plots[figure] = FIGURES[figure](result, predictions, **options)
    return plots


def forecast_figure(result: dict, predictions, quantity: str) -> str:
    models = result["cells"] + result["baselines"]
    return figures.forecast_vs_actual(predictions, models, result["baselines"], quantity=quantity)


def residuals_figure(result: dict, predictions, quantity: str, label: str) -> str:
    return figures.residuals(predictions, result["cells"] + result["baselines"], result["baselines"], quantity, label)


def confusion_figure(result: dict, predictions) -> str:
    models = result["cells"] + result["baselines"]
    matrices = {title_of(result, m): model_scores(result, m)["confusion_matrix"] for m in models}
    return figures.confusion_matrices(matrices, result["labels"])


def roc_figure(result: dict, predictions) -> str:
    return figures.roc_curves(result["curves"], result["labels"], result["baselines"])


# The figures a kind may ask for by name (report_figures), each drawn from the evaluation.
FIGURES = {"forecast": forecast_figure, "residuals": residuals_figure, "confusion": confusion_figure, "roc": roc_figure}


def model_scores(result: dict, model: str) -> dict:
    entry = result["models"][model]
    return entry["scores"] if entry["baseline"] else entry["ensemble"]


def title_of(result: dict, model: str) -> str:
    seeds = len(result["seeds"])
    return model if result["models"][model]["baseline"] else f"{model} ({seeds} seeds combined)"


def metric_names(result: dict) -> list[str]:
    first = result["models"][result["cells"][0]]["summary"]
    return list(first)


def disagreements(predictions, result: dict, limit: int = 8) -> list[dict]:
    """Test examples where the first two cells' combined predictions differ (classification)."""
    if len(result["cells"]) < 2 or "example" not in predictions:  # only text names its examples
        return []
    a, b = result["cells"][:2]
    rows = predictions[predictions[a] != predictions[b]].head(limit)
    return [
        {"example": str(r["example"]), "actual": str(r["actual"]), a: str(r[a]), b: str(r[b])}
        for _, r in rows.iterrows()
    ]


def summary_row(result: dict) -> dict:
    """The summary table's row: the cells' verdict, effect and cost, and the best baseline."""
    cells = result["cells"]
    head = result["comparisons"][0]
    against_baseline = [c for c in result["comparisons"] if c["b"] in result["baselines"]]
    return {
        "comparison": head,
        "answer_words": answer_words(head),
        "p_holm": head["verdict"].get("p_value"),  # the verdict's own p, the one shown everywhere
        "cost": cost_ratios(result, head["a"], head["b"]),
        "baseline": against_baseline[0]["b"] if against_baseline else None,
        "baseline_value": model_scores(result, against_baseline[0]["b"])[head["metric"]] if against_baseline else None,
        "cells": {c: result["models"][c]["summary"][head["metric"]] for c in cells},
        "dots": dot_positions(result, head["metric"]),
        "vs_baseline": {c["a"]: c["verdict"] for c in against_baseline},
        "void": [{"a": c["a"], "b": c["b"], "reason": c["void"]} for c in result["comparisons"] if c.get("void")],
        "did_not_learn": result.get("did_not_learn") or {},
        "still_improving": result.get("still_improving") or {},
        "target": (result.get("context") or {}).get("target"),  # forecasts only: return or volatility
        "answer": answer(result),
    }


# ---- the answer in words -------------------------------------------------------------------------


def answer_words(comparison: dict) -> str:
    """The verdict's answer (one of four, or void) in words, with the winner's name: "B better
    (gru)", "practically equivalent", "undecided", "void"."""
    verdict = comparison["verdict"]
    answer = verdict.get("answer") or ("b_better" if verdict.get("winner") else "undecided")
    if answer == "a_better":
        return f"A better ({comparison['a']})"
    if answer == "b_better":
        return f"B better ({comparison['b']})"
    return {"equivalent": "practically equivalent"}.get(answer, answer)


# Each time the summary compares, read from evaluation's cost entry of a cell (evaluate.costs()),
# and the one unit the summary shows it in: a training run's wall time (the mean over seeds) and
# one sample's inference latency at batch 1.
TIMES = {
    "training": (lambda cost: (cost.get("train_seconds") or {}).get("mean"), "s", "per run"),
    "inference": (
        lambda cost: ((cost.get("latency") or {}).get("batch_1") or {}).get("seconds_per_sample"),
        "µs",
        "per sample",
    ),
}


def cost_ratios(result: dict, a: str, b: str) -> list[dict]:
    """b's time over a's (GRU over LSTM), for each of TIMES measured for both cells, with both
    times in seconds and the unit to show them in; nothing for an evaluation without costs."""
    cost = result.get("cost") or {}
    ratios = []
    for what, (read, unit, per) in TIMES.items():
        seconds = {cell: read(cost.get(cell) or {}) for cell in (a, b)}
        if all(seconds.values()):
            ratios.append(
                {
                    "what": what,
                    "a": a,
                    "b": b,
                    "ratio": seconds[b] / seconds[a],
                    "seconds": seconds,
                    "unit": unit,
                    "per": per,
                }
            )
    return ratios


def answer(result: dict) -> dict:
    """The dataset's answer in one sentence, and the model to use by RECOMMENDATION_RULE."""
    head = result["comparisons"][0]
    baseline = (result.get("best_baseline") or {}).get("name")
    against = {c["a"]: c["verdict"] for c in result["comparisons"] if c["b"] == baseline}
    cheaper, ratio = cheaper_cell(result)
    parts = [f"{head['a']} vs {head['b']}: {verdict_words(head, result)}"]
    if baseline:
        parts.append(baseline_words(baseline, against))
    if cheaper and ratio and head["verdict"].get("answer") != "void":
        parts.append(f"{cheaper} trains {ratio:.1f}x faster")
    use = recommend(result, head, against, baseline, cheaper)
    return {"sentence": "; ".join(parts) + f". Use: {use}.", "use": use}


RECOMMENDATION_RULE = (
    "Use: the best baseline unless a cell that learned is shown better than it or scores better "
    "(the simpler model, where the cells give no reason to prefer them); else the cell that is "
    "better; else, when the cells are practically equivalent or undecided, the cheaper cell to "
    "train (undecided: provisionally, until more seeds or test data decide); never a cell that did "
    "not learn."
)


def recommend(result: dict, head: dict, against: dict, baseline: str | None, cheaper: str | None) -> str:
    from seqbench.metrics import HIGHER_IS_BETTER

    learned = [cell for cell, v in against.items() if v.get("answer") != "void"]
    if baseline and learned:
        metric = head["metric"]
        sign = 1 if HIGHER_IS_BETTER[metric] else -1
        base = result["models"][baseline]["scores"][metric]
        ahead = [c for c in learned if against[c].get("winner") == c]
        scores_better = [c for c in learned if sign * (result["models"][c]["summary"][metric]["mean"] - base) > 0]
        if not ahead and not scores_better:
            return baseline
    verdict = head["verdict"]
    if verdict.get("winner"):
        return verdict["winner"]
    if verdict.get("answer") == "void":
        return learned[0] if learned else "none (no cell learned)"
    provisional = " (provisionally)" if verdict.get("answer") == "undecided" else ""
    return f"{cheaper}, the cheaper{provisional}" if cheaper else "either"


def verdict_words(comparison: dict, result: dict) -> str:
    """The verdict with its effect and interval in the metric's units, in words."""
    verdict, effect, metric = comparison["verdict"], comparison["effect"], comparison["metric"]
    interval = (
        f"{comparison['b']} − {comparison['a']} {effect['difference']:+.3g} {metric}, "
        f"95% CI [{effect['low']:+.3g}, {effect['high']:+.3g}]"
    )
    if verdict.get("answer") == "void":
        return verdict["text"]
    if verdict.get("winner"):
        return f"{verdict['winner']} is better ({interval}, Holm p {verdict['p_value']:.2g})"
    if verdict.get("answer") == "equivalent":
        return f"practically equivalent ({interval}, inside the ROPE ±{result['rope']['width']:.3g})"
    if comparison.get("still_improving"):
        return f"undecided ({interval}), as {improving_words(comparison, result)}"
    return f"undecided ({interval})"


def improving_words(comparison: dict, result: dict) -> str:
    """ "3 of 5 gru runs were still improving at max_epochs": why a comparison is held at
    undecided (evaluate.cap_still_improving), in a few words for the answer sentence."""
    marked = result.get("still_improving") or {}
    parts = []
    for cell in (comparison["a"], comparison["b"]):
        if cell in marked:
            runs, of = marked[cell]["runs"], marked[cell]["of"]
            parts.append(f"{runs} of {of} {cell} run{'s' if of != 1 else ''}")
    were = "was" if len(parts) == 1 and parts[0].startswith("1 of") else "were"
    return f"{' and '.join(parts)} {were} still improving at max_epochs: raise max_epochs"


def baseline_words(baseline: str, against: dict) -> str:
    """How the cells did against the best baseline, in words."""
    beaten = [c for c, v in against.items() if v.get("winner") == c]
    lost = [c for c, v in against.items() if v.get("winner") == baseline]
    if lost and len(lost) == len(against):
        return f"{baseline} beats both" if len(lost) == 2 else f"{baseline} beats {lost[0]}"
    if beaten:
        return f"{' and '.join(beaten)} beat{'s' if len(beaten) == 1 else ''} {baseline}"
    return f"against {baseline}: " + ", ".join(f"{c} {v['text']}" for c, v in against.items())


def cheaper_cell(result: dict) -> tuple[str | None, float | None]:
    """The cell with the shorter mean training time, and how many times shorter (None without costs)."""
    times = {c: (result.get("cost", {}).get(c, {}).get("train_seconds") or {}).get("mean") for c in result["cells"]}
    known = {c: t for c, t in times.items() if t}
    if len(known) < 2:
        return None, None
    fast, slow = sorted(known, key=known.get)[0], sorted(known, key=known.get)[-1]
    return fast, known[slow] / known[fast]


# The cost table's time columns, as read from a cell's cost entry (evaluate.costs()), in seconds.
COST_TABLE_TIMES = {
    "train_seconds": lambda cost: (cost.get("train_seconds") or {}).get("mean"),
    "seconds_to_best": lambda cost: (cost.get("seconds_to_best") or {}).get("mean"),
    **{
        batch: lambda cost, batch=batch: ((cost.get("latency") or {}).get(batch) or {}).get("seconds_per_sample")
        for batch in ("batch_1", "batch_256")
    },
}


def cost_table_ratios(result: dict) -> dict | None:
    """The cost table's last row: the second cell's time over the first's (GRU ÷ LSTM) in each
    time column (None where either is unknown or 0); None without two cells' costs."""
    cost = result.get("cost") or {}
    if len(result["cells"]) < 2 or not all(c in cost for c in result["cells"][:2]):
        return None
    a, b = result["cells"][:2]
    ratios = {}
    for column, read in COST_TABLE_TIMES.items():
        mine, theirs = read(cost[b]), read(cost[a])
        ratios[column] = mine / theirs if mine is not None and theirs else None
    return {"a": a, "b": b, **ratios}


def hidden_sizes(result: dict, search: dict) -> dict:
    """Each cell's hidden size: as measured by evaluation when it says, else the search's choice."""
    chosen = {cell: entry["config"].get("hidden_size") for cell, entry in search["by_cell"].items()}
    return {cell: result.get("cost", {}).get(cell, {}).get("hidden_size", chosen.get(cell)) for cell in result["cells"]}


def kernel_label(kernel: dict | None) -> str | None:
    """ "oneDNN fused LSTM, packed" / "cuDNN (expected: no GPU to observe)" for a training kernel."""
    if not kernel or not kernel.get("name"):
        return None
    label = kernel["name"] + (", packed" if kernel.get("packed") else "")
    return label if kernel.get("observed", True) else f"{label} (expected: not observed here)"


def cost_work(result: dict) -> dict:
    """The cost table's split of the cell from the library: per cell its own multiply-adds and
    the kernels torch ran it with (training step; the timed inference batches), and whether
    the cells' times compare different kernels. Empty values for an evaluation without them."""
    cells = {}
    for cell, entry in result.get("cost", {}).items():
        work = entry.get("multiply_adds") or {}
        latency = entry.get("latency", {})
        inference = {key.removeprefix("batch_"): (v.get("kernel"), v.get("batch")) for key, v in latency.items()}
        names = {name for name, _ in inference.values() if name}
        if len(names) == 1:
            inference_label = names.pop()
        else:
            inference_label = "; ".join(f"batch {batch}: {name}" for name, batch in inference.values() if name) or None
        cells[cell] = {
            "per_step": work.get("per_step"),
            "per_sequence": work.get("per_sequence"),
            "training_kernel": kernel_label(entry.get("kernel")),
            "inference_kernel": inference_label,
        }
    first = next(iter(result.get("cost", {}).values()), {})
    work = first.get("multiply_adds") or {}
    training = {c: (entry.get("kernel") or {}).get("name") for c, entry in result.get("cost", {}).items()}
    return {
        "cells": cells,
        "sequence_length": work.get("sequence_length"),
        "sequence_length_from": work.get("sequence_length_from"),
        "kernels_differ": len({name for name in training.values() if name}) > 1,
        "training_kernels": training,
    }


# ---- each seed as a point ----------------------------------------------------------------------


def seed_scores(result: dict, model: str, metric: str) -> dict:
    """Seed number -> that seed's score of `metric` (per_seed follows the order of `seeds`)."""
    per_seed = result["models"][model]["per_seed"]
    return {seed: s[metric] for seed, s in zip(result["seeds"], per_seed) if s.get(metric) is not None}


def seed_strip(result: dict, metric: str) -> dict:
    """The data of figures.seed_strip: each cell's seeds and mean [CI]; each baseline's score."""
    from seqbench.metrics import HIGHER_IS_BETTER

    return {
        "metric": metric,
        "higher_is_better": HIGHER_IS_BETTER.get(metric),
        "cells": {
            c: {"seeds": seed_scores(result, c, metric), **result["models"][c]["summary"][metric]}
            for c in result["cells"]
        },
        "baselines": {b: result["models"][b]["scores"][metric] for b in result["baselines"]},
    }


def dot_positions(result: dict, metric: str, width: int = 120) -> dict:
    """Positions (0..width px) for the summary table's inline dot strips: per cell each seed, the
    mean and the CI, on one scale per dataset so the cells can be compared by eye."""
    scores = {c: seed_scores(result, c, metric) for c in result["cells"]}
    summary = {c: result["models"][c]["summary"][metric] for c in result["cells"]}
    values = [v for s in scores.values() for v in s.values()]
    values += [summary[c][k] for c in summary for k in ("low", "high") if summary[c].get(k) is not None]
    if not values:
        return {}
    low, span = min(values), (max(values) - min(values)) or 1.0

    def at(value):
        return None if value is None else round(4 + (value - low) / span * (width - 8), 1)

    return {
        c: {
            "seeds": [{"seed": s, "value": v, "x": at(v)} for s, v in scores[c].items()],
            "mean": at(summary[c]["mean"]),
            "low": at(summary[c].get("low")),
            "high": at(summary[c].get("high")),
        }
        for c in result["cells"]
    }


# ---- the summary's forest plot -----------------------------------------------------------------


def forest_panel(name: str, result: dict) -> dict:
    """One dataset's rows of the forest plot, in its primary metric's units, every row read the
    same way: right of 0, the row's second model is better (forest_row)."""
    from seqbench.metrics import HIGHER_IS_BETTER

    head = result["comparisons"][0]
    return {
        "dataset": name,
        "metric": head["metric"],
        "higher_is_better": HIGHER_IS_BETTER.get(head["metric"], True),
        "cells": (head["a"], head["b"]),
        "rows": [forest_row(result, c) for c in result["comparisons"]],
        "rope": (result.get("rope") or {}).get("width"),
    }


def forest_row(result: dict, comparison: dict) -> dict:
    """A comparison as "first vs second", plotted as how much better the second scores than the
    first in the metric's good direction (second − first where higher is better, first − second
    where lower is): right of 0 the second is better, for every metric. Between cells the second
    is evaluation's b (GRU in LSTM vs GRU), so the difference is b − a; against a baseline the
    baseline comes first, so right of 0 the cell beats it."""
    from seqbench.metrics import HIGHER_IS_BETTER

    a, b, effect = comparison["a"], comparison["b"], comparison["effect"]
    against_baseline = result["models"][b]["baseline"]
    first, second = (b, a) if against_baseline else (a, b)
    good = 1 if HIGHER_IS_BETTER.get(comparison["metric"], True) else -1
    sign = good * (-1 if against_baseline else 1)  # evaluation's effect is b − a
    ends = [None if effect.get(k) is None else sign * effect[k] for k in ("low", "high")]
    return {
        "label": f"{first} vs {second}",
        "first": first,
        "second": second,
        "difference": sign * effect["difference"],
        "low": min(ends) if None not in ends else None,
        "high": max(ends) if None not in ends else None,
        "seeds": {seed: good * v for seed, v in seed_differences(result, second, first, comparison["metric"]).items()},
        "verdict": comparison["verdict"],
    }


def seed_differences(result: dict, first: str, second: str, metric: str) -> dict:
    """Seed number -> first's score minus second's: seed k against seed k for two cells, each
    seed against the one score of a (deterministic) baseline."""
    mine = seed_scores(result, first, metric)
    if result["models"][second]["baseline"]:
        base = result["models"][second]["scores"][metric]
        return {} if base is None else {seed: v - base for seed, v in mine.items()}
    theirs = seed_scores(result, second, metric)
    return {seed: v - theirs[seed] for seed, v in mine.items() if seed in theirs}


# ---- the search ----------------------------------------------------------------------------------


def search_section(paths: Paths, name: str, applies=None) -> dict:
    """The search stage's result: how it searched, what each cell chose, every trial.
    `applies(key, config)`: whether a chosen setting applies to the dataset (all, without it)."""
    search = read_search(paths, name)
    cells = search["cells"]
    return {
        "trials": search["trials"],
        "size_match": search.get("size_match"),
        "validation": search.get("validation") or {"method": "holdout"},
        "method": [describe(search.get("sampler")), describe(search.get("pruner"))],
        "cells": list(cells),
        "by_cell": cells,
        "outcome": outcome_rows(cells),
        "config": config_rows(cells, search.get("space") or {}, applies),
        "plot": figures.search_trials({c: trial_series(e["trials"]) for c, e in cells.items()})
        if search["trials"]
        else None,
    }


def describe(entry: dict | None) -> str:
    """{"name": "MedianPruner", "startup_trials": 2} -> "MedianPruner (startup trials 2)"."""
    if not entry:
        return "no pruner"
    options = ", ".join(f"{k.replace('_', ' ')} {format_value(v)}" for k, v in entry.items() if k != "name")
    return f"{entry.get('name', '?')} ({options})" if options else str(entry.get("name", "?"))


def describe_space(dimension) -> str:
    """A search dimension as text: a range, a list of choices, or a fixed value."""
    if isinstance(dimension, dict):
        scale = ", log scale" if dimension.get("log") else ""
        return f"{format_value(dimension.get('low'))} to {format_value(dimension.get('high'))}{scale}"
    if isinstance(dimension, list):
        return "one of " + ", ".join(format_value(v) for v in dimension)
    return f"fixed at {format_value(dimension)}"


def outcome_rows(cells: dict) -> list[dict]:
    """The search per cell (formatted): trials by state, the best trial, wall time."""
    entries = list(cells.values())
    found = {t["state"] for e in entries for t in e["trials"]}
    states = ["complete", "pruned"] + sorted(found - {"complete", "pruned"})  # e.g. "fail"

    def row(label: str, value) -> dict:
        return {"label": label, "per_cell": [value(e) for e in entries]}

    return [
        row("trials run", lambda e: str(len(e["trials"]))),
        *[
            row(f"{state} trials", lambda e, state=state: str(sum(t["state"] == state for t in e["trials"])))
            for state in states
        ],
        row("best trial", lambda e: format_value(e.get("best_trial"))),
        row("best validation loss", lambda e: format_value(e.get("best_value"))),
        row("top 3 trials' validation losses (spread)", top_trials_text),
        row("search wall time", lambda e: format_seconds(e.get("wall_seconds"))),
    ]


def top_trials_text(entry: dict) -> str:
    """The best trials' values and their spread: how decisive the search was (small: another
    search seed could have chosen any of them)."""
    top = entry.get("top_trials") or {}
    if not top.get("values"):
        return "—"
    values = ", ".join(format_value(v) for v in top["values"])
    return f"{values} ({format_value(top['spread'])})"


# The training settings (settings.Budget) that apply to some datasets only, and when, read from
# the dataset's evaluation, its settings and the chosen configuration; every other one applies to
# every dataset. A setting that does not apply is left out of the configuration table.
CONDITIONAL_SETTINGS = {
    "bidirectional": lambda facts: facts["task"] == "classify",  # a forecaster must not see the future
    "pooling": lambda facts: facts["task"] == "classify",  # how a classifier reads its steps
    # The width of a token table trained here; pretrained vectors fix their own, clips have none.
    "embedding_size": lambda facts: facts["embeddings"] == "learned",
    "folds": lambda facts: facts["validation"] == "kfold",
}


def setting_applies(key: str, config: dict, result: dict, dataset=None) -> bool:
    """Whether a training setting applies to this dataset (CONDITIONAL_SETTINGS); `dataset`: its
    settings from params.yaml (a text dataset's `embeddings`)."""
    facts = {
        "task": result["task"],
        "embeddings": getattr(dataset, "embeddings", None),  # only a text dataset has token embeddings
        "validation": config.get("validation", "holdout"),
    }
    return CONDITIONAL_SETTINGS.get(key, lambda _: True)(facts)


def config_rows(cells: dict, space: dict, applies=None) -> list[dict]:
    """The chosen configuration side by side: hidden size and parameter count first, then every
    setting that applies (`applies(key, config)`); what was searched over, and whether the cells
    differ."""
    configs = [dict(e["config"], parameters=e.get("parameters")) for e in cells.values()]
    keys = ["hidden_size", "parameters"] + [
        k
        for k in dict.fromkeys(k for c in configs for k in c)
        if k not in ("hidden_size", "parameters") and (applies is None or any(applies(k, c) for c in configs))
    ]
    rows = []
    for key in keys:
        values = [format_value(c.get(key)) for c in configs]
        rows.append(
            {
                "setting": key.replace("_", " "),
                "per_cell": values,
                "differs": len(set(values)) > 1,
                "space": describe_space(space[key]) if key in space else "",
            }
        )
    return rows


def trial_series(trials: list[dict]) -> dict:
    """The search figure's points: complete and pruned trials, and the best validation loss so
    far over complete trials at every trial number after the first complete one."""
    ordered = sorted(trials, key=lambda t: t["number"])
    best, steps = None, []
    for trial in ordered:
        if trial["state"] == "complete" and trial.get("value") is not None:
            best = trial["value"] if best is None else min(best, trial["value"])
        if best is not None:
            steps.append((trial["number"], best))
    with_value = [t for t in ordered if t.get("value") is not None]
    return {
        "complete": [t for t in with_value if t["state"] == "complete"],
        "pruned": [t for t in with_value if t["state"] == "pruned"],
        "best": steps,
    }


# ---- set-ups tried -------------------------------------------------------------------------------


def setups_section(paths: Paths, name: str) -> dict | None:
    """reports/setups/<dataset>.yaml, when there is one: the set-ups tried on a dataset before
    params.yaml's was chosen, with what each scored (a record kept by hand, shown as it is)."""
    import yaml

    path = paths.setups(name)
    if not path.exists():
        return None
    try:
        record = yaml.safe_load(path.read_text(encoding="utf-8"))
        rows = [
            {
                "setup": str(row["setup"]),
                "changes": row.get("changes") or {},
                "scores": {str(k): float(v) for k, v in row["scores"].items()},
            }
            for row in record["setups"]
        ]
        metric, measured = str(record["metric"]), str(record["measured"])
    except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SeqbenchError(
            f"{path}: not a set-ups record (each of `setups` needs `setup` and `scores`, "
            f"beside `metric` and `measured`): {type(exc).__name__}: {exc}"
        ) from None
    models = list(dict.fromkeys(model for row in rows for model in row["scores"]))
    return {
        "metric": metric,
        "measured": measured,
        "models": models,
        "rows": [
            {
                "setup": row["setup"],
                "changes": describe_changes(row["changes"]),
                "scores": [format_value(row["scores"].get(m)) for m in models],
            }
            for row in rows
        ],
    }


def describe_changes(changes: dict, prefix: str = "") -> str:
    """{"embeddings": "learned", "train": {"param_budget": 60000}} ->
    "embeddings: learned; train.param_budget: 60000"."""
    parts = []
    for key, value in changes.items():
        if isinstance(value, dict):
            parts.append(describe_changes(value, f"{prefix}{key}."))
        else:
            parts.append(f"{prefix}{key}: {value}")
    return "; ".join(parts)


# ---- suites --------------------------------------------------------------------------------------


def suite_section(paths: Paths, name: str) -> dict:
    """A suite's part of the page: reports/suite/<name>.json (suite.py) and its figures."""
    result = read_stage(paths, name, "suite", paths.suite_result(name), f"suite@{name}")
    rows, metric = result["datasets"], result["metric"]
    bayes = result.get("bayesian")
    return {
        "name": name,
        "result": result,
        "models": result["friedman"]["models"],
        "classes": {row["dataset"]: suite_answer_classes(row) for row in rows},
        "plots": {
            "cd": figures.critical_difference(result["friedman"], len(rows)),
            "bayes": figures.bayesian_simplex(bayes, metric) if bayes else None,
            "scatter": figures.lstm_vs_gru(rows, metric, result.get("rope")),
            "cost": figures.cost_vs_score(rows, metric),
        },
    }


def suite_answer_classes(row: dict) -> dict:
    """The page's CSS class (win, equivalent, undecided, void) of a suite row's LSTM-vs-GRU answer
    ("answer") and of each cell's answer against the best baseline (by cell)."""

    def css(answer: str) -> str:
        return answer if answer in ("equivalent", "undecided", "void") else "win"

    return {"answer": css(row["answer"]), **{cell: css(v["answer"]) for cell, v in row["vs_baseline"].items()}}
