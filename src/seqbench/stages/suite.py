"""The `suite@<name>` stage: LSTM vs GRU across a suite's datasets (reports/suite/<name>.json).

Each dataset's evaluation (reports/eval/<dataset>.json) gives one score per model: a cell's
mean over seeds, a baseline's score, on the dataset's headline metric. Across datasets:

- the four answers counted: on how many datasets LSTM is better, the two are practically
  equivalent, the comparison is undecided, GRU is better, or void, each the dataset's own verdict
  (its paired interval against its ROPE, Holm-adjusted); a better mean alone decides nothing;
- the Bayesian signed-rank test with a ROPE (Benavoli et al. 2017, the `baycomp` package) over the
  datasets' LSTM-vs-GRU differences: P(LSTM better), P(practically equivalent), P(GRU better);
- the Wilcoxon signed-rank test of LSTM vs GRU over the datasets' scores (Demšar 2006);
- the Friedman test over LSTM, GRU and the baselines every dataset has, their average ranks,
  and post-hoc pairwise Wilcoxon tests with Holm's correction; the groups of models that no
  adjusted test separates are the critical-difference diagram's bars (Benavoli et al. 2016,
  as aeon's plot_critical_difference does by default);
- one sentence saying what a reader may conclude from all that, and what not.

Scores are oriented before ranking (metrics.HIGHER_IS_BETTER), so rank 1 is always the best.
"""

from __future__ import annotations

from pathlib import Path

from seqbench.errors import SeqbenchError
from seqbench.paths import Paths
from seqbench.timings import read_evaluation

CELLS = ("lstm", "gru")

# Baselines that ignore the input sequence: a constant forecast or the training labels' class
# frequencies (kinds/classify.py majority; kinds/returns.py random_walk, historical_mean,
# always_up). They are ranked and shown, but nobody asks whether a cell beats them, so their
# post-hoc pairs are a Holm family of their own and do not dilute the cells' correction. The
# baselines that read the input (nn_dtw, tfidf_logreg, ridge_ar, HAR, EWMA, GARCH) are the
# sceptic's real competitors (DESIGN.md, protocol 7) and stay in the cells' family.
TRIVIAL_BASELINES = frozenset({"majority", "random_walk", "historical_mean", "always_up"})

# The answers a dataset's LSTM-vs-GRU verdict can give, in the order the suite lists them.
ANSWERS = ("lstm_better", "equivalent", "undecided", "gru_better", "void")
ANSWER_WORDS = {
    "lstm_better": "LSTM better",
    "equivalent": "practically equivalent",
    "undecided": "undecided",
    "gru_better": "GRU better",
    "void": "void",
}

# The Bayesian signed-rank test: baycomp's default prior (a pseudo-observation at 0 of strength
# 0.5, Benavoli et al. 2017), a fixed seed so that the probabilities are the same on every run,
# and the posterior probability from which a region counts as decided (Benavoli et al. use 0.95).
BAYES_PRIOR = 0.5
BAYES_SAMPLES = 50_000
BAYES_SEED = 0
BAYES_KEPT = 1_000  # posterior samples kept in the JSON for the report's simplex
DECIDED = 0.95


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
    result = suite_statistics(name, evaluations, params.verdict.rope)
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


def suite_statistics(name: str, evaluations: dict, ropes: dict | None = None) -> dict:
    """Everything the suite section shows, from {dataset: evaluation}. `ropes`: params.yaml's
    global `verdict.rope` (metric -> width); ROPE_DEFAULTS fill in the metrics it does not name."""
    from seqbench.stats import ALPHA

    rows = [dataset_row(dataset, result) for dataset, result in evaluations.items()]
    metric = common_metric(name, rows)
    rope = suite_rope(name, metric, ropes)
    baselines, left_out = shared_baselines(evaluations)
    models = [*CELLS, *baselines]
    # A void dataset compares a cell that did not learn: it is counted, but no LSTM-vs-GRU test
    # across datasets takes it as evidence (DESIGN.md, protocol 8).
    deciding = [row for row in rows if not row["void"]]
    result = {
        "suite": name,
        "metric": metric,
        "higher_is_better": rows[0]["higher_is_better"],
        "alpha": ALPHA,
        "rope": rope,
        "datasets": rows,
        "counts": answer_counts(rows),
        "bayesian": bayesian_signed_rank(deciding, rope),
        "wilcoxon": wilcoxon_lstm_gru(deciding),
        "friedman": friedman(oriented_matrix(rows, models), models),
        "trivial_baselines": [b for b in baselines if b in TRIVIAL_BASELINES],
        "baselines_left_out": left_out,
    }
    result["summary"] = summary_sentence(result)
    return result


def dataset_row(dataset: str, result: dict) -> dict:
    """One dataset: each model's headline score, its LSTM-vs-GRU answer and effect, each cell's
    answer against the best baseline, and each cell's cost."""
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
    best = (result.get("best_baseline") or {}).get("name")
    answer = answer_of(pair)
    return {
        "dataset": dataset,
        "metric": metric,
        "higher_is_better": HIGHER_IS_BETTER[metric],
        "scores": scores,
        "answer": f"{answer}_better" if answer in CELLS else answer,
        "answer_words": ANSWER_WORDS[f"{answer}_better" if answer in CELLS else answer],
        "winner": pair["verdict"].get("winner"),
        "verdict": pair["verdict"]["text"],
        "void": answer == "void",
        # Cells with runs cut off by max_epochs: their verdicts are at most undecided (evaluate.py).
        "still_improving": [cell for cell in result["cells"] if cell in (result.get("still_improving") or {})],
        "p_value": pair["verdict"].get("p_value"),
        "effect": effect_of(pair),
        "rope": pair["verdict"].get("rope"),
        "best_baseline": best,
        "vs_baseline": {
            c["a"]: {"answer": answer_of(c), "words": words_of(c), "effect": effect_of(c)}
            for c in result["comparisons"]
            if c["b"] == best and c["a"] in CELLS
        },
        # measured times: absent where the workspace has none (timings.py)
        "train_seconds": {cell: (result["cost"][cell].get("train_seconds") or {}).get("mean") for cell in CELLS},
        "parameters": {cell: result["cost"][cell]["trainable_parameters"] for cell in CELLS},
    }


def answer_of(comparison: dict) -> str:
    """The comparison's answer as the winner's name, "equivalent", "undecided" or "void". An
    evaluation from before the four answers has only a winner: no winner reads as undecided."""
    verdict = comparison["verdict"]
    if comparison.get("void") or verdict.get("answer") == "void":
        return "void"
    if verdict.get("winner"):
        return verdict["winner"]
    return "equivalent" if verdict.get("answer") == "equivalent" else "undecided"


def words_of(comparison: dict) -> str:
    """ "lstm better", "practically equivalent", "undecided" or "void"."""
    answer = answer_of(comparison)
    return ANSWER_WORDS.get(answer, f"{answer} better")


def effect_of(comparison: dict) -> dict:
    """b − a in the metric's units, its 95% interval and the Holm p the verdict used."""
    effect = comparison.get("effect") or {}
    return {
        "a": comparison["a"],
        "b": comparison["b"],
        **{key: effect.get(key) for key in ("difference", "low", "high", "p_holm")},
    }


def common_metric(name: str, rows: list[dict]) -> str:
    """The suite's one headline metric: the tests across datasets compare like with like (the
    Bayesian test's ROPE is in one metric's units)."""
    metrics = {row["metric"] for row in rows}
    if len(metrics) > 1:
        listed = ", ".join(f"{row['dataset']}: {row['metric']}" for row in rows)
        raise SeqbenchError(
            f"suite '{name}': its datasets are scored on different headline metrics ({listed}); "
            "a suite compares one metric (its tests and ROPE are in that metric's units), so group "
            "datasets of one task"
        )
    return metrics.pop()


def suite_rope(name: str, metric: str, ropes: dict | None) -> dict:
    """The suite's region of practical equivalence for `metric`, from the global `verdict.rope`
    or ROPE_DEFAULTS (a dataset's own `verdict.rope` is its own verdict's, not the suite's).

    A width in the metric's units is used as it is. A relative one ("1%") is what each dataset's
    verdict uses too: P% of that dataset's best baseline's score (evaluate.rope_width); so the
    Bayesian test then compares each dataset's difference divided by its best baseline's score
    against P/100, which puts every dataset inside its own ROPE exactly when its verdict does."""
    from seqbench.settings import ROPE_DEFAULTS, parse_rope

    widths = {**ROPE_DEFAULTS, **(ropes or {})}
    if metric not in widths:
        raise SeqbenchError(
            f"suite '{name}': no region of practical equivalence for its metric {metric}; set "
            f"`verdict.rope.{metric}` in params.yaml (a width in {metric}'s units, e.g. {metric}: 0.01, "
            "or a percentage of the best baseline's score, e.g. '1%')"
        )
    value, relative = parse_rope(widths[metric])
    return {"metric": metric, "width": value, "relative": relative}


def shared_baselines(evaluations: dict) -> tuple[list[str], list[str]]:
    """The baselines every dataset has (in the first's order), and those some datasets lack."""
    lists = [result.get("baselines", []) for result in evaluations.values()]
    every = [b for b in lists[0] if all(b in other for other in lists)]
    some = sorted({b for names in lists for b in names} - set(every))
    return every, some


def answer_counts(rows: list[dict]) -> dict:
    """How many datasets give each answer (ANSWERS), from each dataset's own verdict."""
    return {answer: sum(row["answer"] == answer for row in rows) for answer in ANSWERS}


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


# ---- the Bayesian signed-rank test ---------------------------------------------------------------


def gru_minus_lstm(row: dict, rope: dict) -> float:
    """GRU's oriented score minus LSTM's (> 0: GRU better), in the ROPE's units: the metric's, or
    for a relative ROPE a fraction of the dataset's best baseline's score (suite_rope)."""
    difference = oriented(row, "gru") - oriented(row, "lstm")
    if not rope["relative"]:
        return difference
    scale = row["scores"].get(row["best_baseline"]) if row["best_baseline"] else None
    if not scale:
        raise SeqbenchError(
            f"{row['dataset']}: verdict.rope.{rope['metric']} is relative, but the dataset has no best "
            f"baseline with a non-zero {rope['metric']} score to scale it by; give the suite's metric an "
            "absolute width"
        )
    return difference / abs(scale)


def bayesian_signed_rank(rows: list[dict], rope: dict) -> dict | None:
    """Benavoli et al.'s (2017) Bayesian signed-rank test of GRU − LSTM over the datasets with
    the suite's ROPE: the posterior probabilities that LSTM is better, that the two are
    practically equivalent and that GRU is better, and a thinned posterior sample (a point of
    the simplex each). None without a dataset to test (every one void)."""
    import numpy as np
    from baycomp import SignedRankTest

    if not rows:
        return None
    differences = np.array([gru_minus_lstm(row, rope) for row in rows])
    # baycomp's x, y: its "left" is x better, its "right" y better; x = 0, y = the differences.
    sample = SignedRankTest.sample(
        np.zeros(len(rows)),
        differences,
        rope["width"],
        prior=BAYES_PRIOR,
        nsamples=BAYES_SAMPLES,
        random_state=BAYES_SEED,
    )
    # Each sample's most probable region (baycomp's Posterior.probs).
    shares = np.bincount(np.argmax(sample, axis=1), minlength=3) / len(sample)
    return {
        "test": "Bayesian signed-rank",
        "n": len(rows),
        "datasets": [row["dataset"] for row in rows],
        "differences": [float(d) for d in differences],
        "rope": rope["width"],
        "relative": rope["relative"],
        "prior": BAYES_PRIOR,
        "samples": BAYES_SAMPLES,
        "seed": BAYES_SEED,
        "p_lstm_better": float(shares[0]),
        "p_equivalent": float(shares[1]),
        "p_gru_better": float(shares[2]),
        "posterior_sample": np.round(sample[:: BAYES_SAMPLES // BAYES_KEPT], 4).tolist(),
    }


# ---- Wilcoxon and Friedman -----------------------------------------------------------------------


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
            "note": "LSTM and GRU score the same on every dataset" if rows else "every dataset's comparison is void",
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
    within its family: "compared" (cells and the baselines that read the input) or "trivial"
    (a pair with a TRIVIAL_BASELINES member), so that trivial pairs do not inflate the cells'."""
    import itertools

    from scipy.stats import wilcoxon

    from seqbench.stats import holm

    pairs = []
    for i, j in itertools.combinations(range(len(models)), 2):
        a, b = matrix[:, i], matrix[:, j]
        p_value = 1.0 if (a == b).all() else float(wilcoxon(a, b).pvalue)  # identical: no evidence
        trivial = {models[i], models[j]} & TRIVIAL_BASELINES
        pairs.append(
            {"a": models[i], "b": models[j], "p_value": p_value, "family": "trivial" if trivial else "compared"}
        )
    for family in ("compared", "trivial"):
        members = [p for p in pairs if p["family"] == family]
        for pair, adjusted in zip(members, holm([p["p_value"] for p in members])):
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


# ---- the summary sentence ------------------------------------------------------------------------


def summary_sentence(result: dict) -> str:
    """What a reader may conclude across the suite's datasets, and what not, in one sentence:
    the datasets' own answers, the Bayesian test's probabilities and what they decide, and what
    the undecided and void datasets lack."""
    counts, bayes = result["counts"], result["bayesian"]
    told = ", ".join(f"{ANSWER_WORDS[a]} on {counts[a]}" for a in ANSWERS if counts[a])
    parts = [f"Across {len(result['datasets'])} datasets, each dataset's own verdict: {told}"]
    if bayes is None:
        parts.append("no test across datasets is possible, as every comparison is void")
    else:
        over = "them" if bayes["n"] == len(result["datasets"]) else f"the {bayes['n']} that are not void"
        parts.append(f"{bayes_words(bayes, result['rope'], over)}: {conclusion(bayes)}")
    undecided, void = counts["undecided"], counts["void"]
    if undecided:
        parts.append(
            f"the {undecided} undecided {'one needs' if undecided == 1 else 'ones need'} more seeds or test data"
        )
    if void:
        parts.append(
            f"the {void} void {'one' if void == 1 else 'ones'} (a cell did not learn) "
            f"{'is' if void == 1 else 'are'} left out of the LSTM-vs-GRU tests"
        )
    return "; ".join(parts) + "."


def bayes_words(bayes: dict, rope: dict, over: str) -> str:
    metric = rope["metric"]
    width = f"±{rope['width']:.3g} {metric}"
    if rope["relative"]:
        width = f"±{100 * rope['width']:.3g}% of each dataset's best baseline {metric}"
    return (
        f"the Bayesian signed-rank test over {over} (ROPE {width}) gives "
        f"P(LSTM better) = {bayes['p_lstm_better']:.2f}, P(practically equivalent) = "
        f"{bayes['p_equivalent']:.2f}, P(GRU better) = {bayes['p_gru_better']:.2f}"
    )


def conclusion(bayes: dict) -> str:
    """What the probabilities decide at DECIDED, about these datasets only."""
    lstm, same, gru = bayes["p_lstm_better"], bayes["p_equivalent"], bayes["p_gru_better"]
    if lstm >= DECIDED:
        return "LSTM is better across these datasets"
    if gru >= DECIDED:
        return "GRU is better across these datasets"
    if same >= DECIDED:
        return "LSTM and GRU are practically equivalent across these datasets (pick the cheaper)"
    if lstm + same >= DECIDED:
        return "GRU is not better across these datasets, but neither is LSTM shown better nor the two equivalent"
    if gru + same >= DECIDED:
        return "LSTM is not better across these datasets, but neither is GRU shown better nor the two equivalent"
    return f"no cell is shown better across these datasets, nor the two equivalent (no probability reaches {DECIDED})"
