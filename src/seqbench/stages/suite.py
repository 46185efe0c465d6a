"""The `suite@<name>` stage: LSTM vs GRU across a suite's datasets (reports/suite/<name>.json).

Each dataset's evaluation (reports/eval/<dataset>.json) gives one score per model: a cell's
mean over seeds, a baseline's score, on the dataset's headline metric. Across datasets:

- win / tie / loss of LSTM against GRU, where a win is the dataset's own verdict (its paired
  test, Holm-adjusted, with agreeing seeds): a better mean alone is a tie;
- the Wilcoxon signed-rank test of LSTM vs GRU over the datasets' scores (Demšar 2006);
- the Friedman test over LSTM, GRU and the baselines every dataset has, their average ranks,
  and post-hoc pairwise Wilcoxon tests with Holm's correction; the groups of models that no
  adjusted test separates are the critical-difference diagram's bars (Benavoli et al. 2016,
  as aeon's plot_critical_difference does by default).

Scores are oriented before ranking (metrics.HIGHER_IS_BETTER), so rank 1 is always the best.
"""

from __future__ import annotations

from pathlib import Path

from seqbench.errors import SeqbenchError
from seqbench.paths import Paths
from seqbench.timings import read_evaluation

CELLS = ("lstm", "gru")


def run_suite(name: str, params_path: Path | str = "params.yaml") -> dict:
    """Compute suite `name` from its datasets' evaluations and write reports/suite/<name>.json."""
    from seqbench.config import load_params
    from seqbench.timings import write_stage

    params_path = Path(params_path)
    params = load_params(params_path)
    if name not in params.suites:
        known = ", ".join(params.suites) or "none"
        raise SeqbenchError(f"unknown suite '{name}'; {params_path} declares: {known}")
    paths = Paths(params_path.resolve().parent)
    evaluations = load_evaluations(paths, params.suites[name].datasets)
    result = suite_statistics(name, evaluations)
    write_stage(paths, name, "suite", result, paths.suite_result(name))  # training times apart (timings.py)
    return result


def load_evaluations(paths: Paths, datasets: list[str]) -> dict:
    """dataset -> its reports/eval JSON; every missing one is named in one error."""
    missing = [d for d in datasets if not paths.evaluation(d).exists()]
    if missing:
        raise SeqbenchError(
            f"the suite's datasets {', '.join(missing)} have no evaluation "
            f"(reports/eval/<dataset>.json); run `dvc repro " + " ".join(f"evaluate@{d}" for d in missing) + "` first"
        )
    return {dataset: read_evaluation(paths, dataset) for dataset in datasets}


def suite_statistics(name: str, evaluations: dict) -> dict:
    """Everything the suite section shows, from {dataset: evaluation}."""
    from seqbench.stats import ALPHA

    rows = [dataset_row(dataset, result) for dataset, result in evaluations.items()]
    metric = common_metric(rows)
    baselines, left_out = shared_baselines(evaluations)
    models = [*CELLS, *baselines]
    return {
        "suite": name,
        "metric": metric,
        "higher_is_better": rows[0]["higher_is_better"],
        "alpha": ALPHA,
        "datasets": rows,
        "counts": win_tie_loss(rows),
        "wilcoxon": wilcoxon_lstm_gru(rows),
        "friedman": friedman(oriented_matrix(rows, models), models),
        "baselines_left_out": left_out,
    }


def dataset_row(dataset: str, result: dict) -> dict:
    """One dataset: each model's headline score, the LSTM-vs-GRU verdict, each cell's cost."""
    from seqbench.metrics import HIGHER_IS_BETTER

    missing = [cell for cell in CELLS if cell not in result.get("cells", [])]
    if missing:
        raise SeqbenchError(
            f"{dataset}: its evaluation has no {', '.join(missing)}; a suite compares "
            "LSTM and GRU, so train.cells must hold both"
        )
    metric = result["comparisons"][0]["metric"]  # the verdict's metric (evaluate.comparisons)
    models = result["models"]
    scores = {
        model: entry["scores"][metric] if entry["baseline"] else entry["summary"][metric]["mean"]
        for model, entry in models.items()
    }
    pair = next(c for c in result["comparisons"] if {c["a"], c["b"]} == set(CELLS))
    return {
        "dataset": dataset,
        "metric": metric,
        "higher_is_better": HIGHER_IS_BETTER[metric],
        "scores": scores,
        "winner": pair["verdict"]["winner"],
        "verdict": pair["verdict"]["text"],
        "void": bool(pair.get("void")),
        "p_value": pair["verdict"]["p_value"],
        "train_seconds": {cell: result["cost"][cell]["train_seconds"]["mean"] for cell in CELLS},
        "parameters": {cell: result["cost"][cell]["trainable_parameters"] for cell in CELLS},
    }


def common_metric(rows: list[dict]) -> str:
    """The suite's one headline metric: the tests across datasets compare like with like."""
    metrics = {row["metric"] for row in rows}
    if len(metrics) > 1:
        listed = ", ".join(f"{row['dataset']}: {row['metric']}" for row in rows)
        raise SeqbenchError(
            f"the suite's datasets are scored on different headline metrics ({listed}); "
            "a suite compares one metric, so group datasets of one task"
        )
    return metrics.pop()


def shared_baselines(evaluations: dict) -> tuple[list[str], list[str]]:
    """The baselines every dataset has (in the first's order), and those some datasets lack."""
    lists = [result.get("baselines", []) for result in evaluations.values()]
    every = [b for b in lists[0] if all(b in other for other in lists)]
    some = sorted({b for names in lists for b in names} - set(every))
    return every, some


def win_tie_loss(rows: list[dict]) -> dict:
    """LSTM's record against GRU: a win needs the dataset's significant verdict for LSTM."""
    wins = sum(row["winner"] == "lstm" for row in rows)
    losses = sum(row["winner"] == "gru" for row in rows)
    return {"lstm_wins": wins, "ties": len(rows) - wins - losses, "gru_wins": losses}


def oriented(row: dict, model: str) -> float:
    """The score with larger always better, so that ranks and differences read one way."""
    value = row["scores"][model]
    if value is None:
        raise SeqbenchError(f"{row['dataset']}: {model} has no {row['metric']} score")
    return float(value) if row["higher_is_better"] else -float(value)


def oriented_matrix(rows: list[dict], models: list[str]):
    """[datasets, models] of oriented scores."""
    import numpy as np

    return np.array([[oriented(row, model) for model in models] for row in rows], dtype="float64")


def wilcoxon_lstm_gru(rows: list[dict]) -> dict:
    """The Wilcoxon signed-rank test of LSTM vs GRU over the datasets (two-sided). Datasets where
    the two score the same are dropped (scipy's default, zero_method='wilcox')."""
    from scipy.stats import wilcoxon

    lstm = [oriented(row, "lstm") for row in rows]
    gru = [oriented(row, "gru") for row in rows]
    differing = sum(a != b for a, b in zip(lstm, gru))
    better = "lstm" if sum(lstm) > sum(gru) else "gru" if sum(gru) > sum(lstm) else None
    if differing == 0:
        return {
            "test": "Wilcoxon signed-rank",
            "statistic": None,
            "p_value": 1.0,
            "n": 0,
            "better": None,
            "note": "LSTM and GRU score the same on every dataset",
        }
    test = wilcoxon(lstm, gru)
    return {
        "test": "Wilcoxon signed-rank",
        "statistic": float(test.statistic),
        "p_value": float(test.pvalue),
        "n": differing,
        "better": better,
    }


def friedman(matrix, models: list[str]) -> dict:
    """The Friedman test over `models` (columns of `matrix`, oriented), average ranks (1 best),
    Holm-adjusted pairwise Wilcoxon tests and the cliques they leave."""
    import numpy as np
    from scipy.stats import friedmanchisquare, rankdata

    from seqbench.stats import ALPHA

    if len(models) < 3:
        raise SeqbenchError(
            f"a Friedman test needs at least 3 models; the suite's datasets share only "
            f"{', '.join(models)} (no baseline on every dataset)"
        )
    ranks = rankdata(-matrix, axis=1)  # per dataset, ties share their mean rank
    average = dict(zip(models, (float(r) for r in ranks.mean(axis=0))))
    if np.all(matrix == matrix[:, :1]):  # every model the same on every dataset: nothing to rank
        statistic, p_value = 0.0, 1.0
    else:
        test = friedmanchisquare(*matrix.T)
        statistic, p_value = float(test.statistic), float(test.pvalue)
    order = sorted(models, key=lambda m: average[m])
    pairs = posthoc(matrix, models)
    significant = {(p["a"], p["b"]) for p in pairs if p["p_holm"] < ALPHA} if p_value < ALPHA else set()
    return {
        "test": "Friedman",
        "statistic": statistic,
        "p_value": p_value,
        "models": order,
        "average_ranks": {m: average[m] for m in order},
        "posthoc": pairs,
        "cliques": cliques(order, significant),
    }


def posthoc(matrix, models: list[str]) -> list[dict]:
    """Every pair of models: the two-sided Wilcoxon signed-rank test over datasets, Holm-adjusted
    as one family."""
    import itertools

    from scipy.stats import wilcoxon

    from seqbench.stats import holm

    pairs = []
    for i, j in itertools.combinations(range(len(models)), 2):
        a, b = matrix[:, i], matrix[:, j]
        p_value = 1.0 if (a == b).all() else float(wilcoxon(a, b).pvalue)  # identical: no evidence
        pairs.append({"a": models[i], "b": models[j], "p_value": p_value})
    for pair, adjusted in zip(pairs, holm([p["p_value"] for p in pairs])):
        pair["p_holm"] = adjusted
    return pairs


def cliques(order: list[str], significant: set) -> list[list[str]]:
    """The maximal runs of consecutive models (by average rank) within which no pair differs
    significantly: the diagram's bars. Single models are left out (a bar joins two or more)."""

    def differ(a: str, b: str) -> bool:
        return (a, b) in significant or (b, a) in significant

    runs = []
    for start in range(len(order)):
        end = start
        while end + 1 < len(order) and not any(differ(order[k], order[end + 1]) for k in range(start, end + 1)):
            end += 1
        run = order[start : end + 1]
        if len(run) > 1 and not any(set(run) <= set(other) for other in runs):
            runs.append(run)
    return runs
