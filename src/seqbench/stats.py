"""Confidence intervals over seeds, paired tests on the test set, and the verdict rule.

The verdict rule is VERDICT_RULE below; the report prints it.
"""

from __future__ import annotations

import math

ALPHA = 0.05
CONFIDENCE = 0.95
VERDICT_RULE = (
    "Each model's seeds are combined into one ensemble (forecasts averaged; class probabilities "
    "averaged, then the most probable class). The two ensembles are compared on the same test "
    "examples with a paired two-sided test of the primary metric at ALPHA = 0.05. Forecasts: "
    "Diebold-Mariano on squared errors, the long-run variance of the loss differential from its "
    "autocovariances up to lag h-1 with Bartlett (Newey-West) weights 1 - k/h, and the "
    "Harvey-Leybourne-Newbold correction (Student's t on n-1 degrees of freedom). Classifications: "
    "a paired permutation test of macro-F1 (each example's two predictions swapped at random, "
    "9,999 resamples with a fixed seed, or all 2^n swaps when that is fewer) decides; McNemar's "
    "exact test of accuracy is reported beside it and does not decide. A dataset's comparisons "
    "(every pair of cells, i.e. LSTM vs GRU, and each cell vs the best baseline) are one family: "
    "their p-values are adjusted by Holm's method (McNemar's separately, as their own family), and "
    "the verdict uses the Holm-adjusted p. The seeds give a second check: the 95% interval of the "
    "difference in the primary metric over seeds (Welch's t). A winner is named only when the "
    "adjusted p < ALPHA, the seed means point the same way, and that interval excludes zero; "
    'otherwise the verdict is "no significant difference", with the reason.'
)
PERMUTATION_RESAMPLES = 9999
PERMUTATION_SEED = 0  # fixed: the same p-value on every machine and every run


def mean_ci(values, bounds: tuple[float, float] | None = None) -> dict:
    """Mean and Student-t 95% interval over seeds; no interval from fewer than two values.

    `bounds` clips the interval to a metric's range (an accuracy interval ends at 1).
    """
    import numpy as np
    from scipy import stats

    values = np.asarray([v for v in values if v is not None], dtype="float64")
    if len(values) == 0:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean = float(values.mean())
    if len(values) < 2:
        return {"mean": mean, "low": None, "high": None, "n": 1}
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1) * stats.sem(values)) if np.ptp(values) > 0 else 0.0
    low, high = mean - half, mean + half
    if bounds:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"mean": mean, "low": low, "high": high, "n": int(len(values))}


def difference_ci(a, b) -> dict:
    """Mean of b minus mean of a over seeds, with Welch's 95% interval.

    When b is a single value (a deterministic baseline), the interval is b minus a's interval.
    """
    import numpy as np
    from scipy import stats

    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    effect = float(b.mean() - a.mean())
    if len(b) == 1:
        shifted = mean_ci(b[0] - a)
        return {"difference": effect, "low": shifted["low"], "high": shifted["high"]}
    if len(a) < 2:
        return {"difference": effect, "low": None, "high": None}
    if np.ptp(a) == 0 and np.ptp(b) == 0:  # no spread over seeds: the difference is exact
        return {"difference": effect, "low": effect, "high": effect}
    interval = stats.ttest_ind(b, a, equal_var=False).confidence_interval(CONFIDENCE)
    return {"difference": effect, "low": float(interval.low), "high": float(interval.high)}


def diebold_mariano(errors_a, errors_b, horizon: int = 1, power: int = 2) -> dict:
    """Diebold-Mariano test of equal accuracy, with the Harvey-Leybourne-Newbold (1997) correction.

    d_t = |e_a|^p - |e_b|^p. An h-step forecast's errors are MA(h-1), so the long-run variance of
    d is gamma_0 + 2 * sum of its autocovariances up to lag h-1, unweighted (Diebold and Mariano
    1995), the estimator HLN derived their correction for. The statistic is scaled by
    sqrt((n + 1 - 2h + h(h-1)/n) / n) and compared with Student's t on n-1 degrees of freedom.
    A positive statistic means model a has the larger loss.

    Bartlett weights (1 - k/h) would keep the variance positive but shrink it: for an MA(4)
    differential about 3.4 gamma_0 against the true 5 gamma_0, and a nominal 5% test rejected
    about 11% of the time (tests/unit/test_metrics_stats.py simulates it). Where the unweighted
    sum is not positive, the test falls back to h = 1 and says so, as R's forecast::dm.test does.
    """
    import numpy as np
    from scipy import stats

    d = np.abs(np.asarray(errors_a, "float64")) ** power - np.abs(np.asarray(errors_b, "float64")) ** power
    n = len(d)
    if n < 3:
        raise ValueError("the Diebold-Mariano test needs at least 3 paired errors")
    variance_from = f"autocovariances at lags 0-{horizon - 1}, unweighted"
    variance = long_run_variance(d, horizon) / n
    if variance <= 0 and horizon > 1:
        horizon, variance = 1, long_run_variance(d, 1) / n
        variance_from = "lag 0 only: the unweighted sum up to lag h-1 was not positive"
    if variance <= 0:  # identical losses: nothing to tell apart
        return {"test": "Diebold-Mariano (HLN)", "statistic": 0.0, "p_value": 1.0, "n": n, "better": None}
    dm = d.mean() / math.sqrt(variance)
    hln = dm * math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    p_value = float(2 * stats.t.sf(abs(hln), df=n - 1))
    better = None if hln == 0 else ("b" if hln > 0 else "a")
    return {
        "test": "Diebold-Mariano (HLN)",
        "statistic": float(hln),
        "p_value": p_value,
        "n": n,
        "better": better,
        "long_run_variance": variance_from,
    }


def long_run_variance(d, horizon: int) -> float:
    """gamma_0 + 2 * sum_{k=1}^{h-1} gamma_k: the truncated, unweighted estimate (statsmodels' HAC
    with the uniform kernel and maxlags = h-1 gives the same number). It can be negative."""
    import numpy as np

    n = len(d)
    centred = d - d.mean()
    autocov = [float(np.dot(centred[k:], centred[: n - k]) / n) for k in range(min(horizon, n))]
    return autocov[0] + 2 * sum(autocov[1:])


def mcnemar_exact(correct_a, correct_b) -> dict:
    """McNemar's exact test: a binomial test on the examples exactly one model gets right.

    The statistic is (only a right) - (only b right): positive when a is right more often.
    """
    import numpy as np
    from scipy.stats import binomtest

    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    discordant = only_a + only_b
    p_value = 1.0 if discordant == 0 else float(binomtest(only_a, discordant, 0.5).pvalue)
    better = None if only_a == only_b else ("a" if only_a > only_b else "b")
    return {
        "test": "McNemar exact",
        "statistic": float(only_a - only_b),
        "p_value": p_value,
        "only_a_correct": only_a,
        "only_b_correct": only_b,
        "n": int(len(correct_a)),
        "better": better,
    }


def macro_f1(labels, predicted, num_classes: int):
    """Macro-F1 of predicted classes along the last axis, so a batch of resamples in one call.

    The same number as sklearn's f1_score(average="macro", labels=range(num_classes),
    zero_division=0): per class 2TP / (2TP + FP + FN), 0 for a class neither present nor
    predicted. Why not sklearn itself: it costs ~3 ms a call, a minute per comparison at 10,000
    resamples; the tests check the two agree.
    """
    import numpy as np

    labels, predicted = np.asarray(labels), np.asarray(predicted)
    per_class = []
    for c in range(num_classes):
        hit = predicted == c
        true_positives = np.sum(hit & (labels == c), axis=-1)
        total = np.sum(hit, axis=-1) + np.sum(labels == c)  # (TP + FP) + (TP + FN)
        f1 = np.zeros(np.shape(total))
        np.divide(2 * true_positives, total, out=f1, where=total > 0)
        per_class.append(f1)
    return np.mean(per_class, axis=0)


def paired_permutation_f1(
    labels, pred_a, pred_b, num_classes: int, resamples: int = PERMUTATION_RESAMPLES, seed: int = PERMUTATION_SEED
) -> dict:
    """Paired permutation test of equal macro-F1 of two classifiers on the same examples.

    Under the null the two models are exchangeable on each example, so each example's two
    predicted classes are swapped at random (scipy's permutation_type="samples"); exact over all
    2^n swaps when that is no more than `resamples`. The seed is fixed so the p-value is the same
    on any machine. The statistic is macro-F1(b) - macro-F1(a): positive when b is better.
    """
    import numpy as np
    from scipy.stats import permutation_test

    labels = np.asarray(labels)
    pred_a, pred_b = np.asarray(pred_a), np.asarray(pred_b)
    if len(labels) == 0 or not len(labels) == len(pred_a) == len(pred_b):
        raise ValueError("the permutation test needs the same non-empty test examples for both models")

    def statistic(a, b, axis):
        a, b = np.moveaxis(a, axis, -1), np.moveaxis(b, axis, -1)
        return macro_f1(labels, b, num_classes) - macro_f1(labels, a, num_classes)

    batch = max(1, 2**22 // len(labels))  # resamples per numpy call: bounds the memory to ~4M cells
    result = permutation_test(
        (pred_a, pred_b),
        statistic,
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,
        batch=batch,
        alternative="two-sided",
        rng=seed,
    )
    observed = float(result.statistic)
    better = None if observed == 0 else ("b" if observed > 0 else "a")
    return {
        "test": "Paired permutation (macro-F1)",
        "statistic": observed,
        "p_value": float(result.pvalue),
        "n": int(len(labels)),
        "better": better,
        "resamples": int(len(result.null_distribution)),
        "seed": seed,
    }


def holm(p_values) -> list[float]:
    """Holm-Bonferroni adjusted p-values: the family-wise error rate of a dataset's comparisons
    stays at ALPHA when each adjusted p is compared with ALPHA."""
    from statsmodels.stats.multitest import multipletests

    p_values = list(p_values)
    if not p_values:
        return []
    return [float(p) for p in multipletests(p_values, alpha=ALPHA, method="holm")[1]]


def verdict(
    names: tuple[str, str],
    test: dict,
    seed_means: tuple[float, float],
    higher_is_better: bool,
    effect: dict | None = None,
) -> dict:
    """The winner of a against b under the rule in this module's docstring, or none.

    test: a paired test's result ("p_value", "better": "a", "b" or None, and "p_holm", the
          Holm-adjusted p, when it is one of several comparisons: then that p decides);
    seed_means: the primary metric's mean over seeds of a and of b;
    effect: difference_ci(a's seeds, b's seeds), the interval of b minus a (optional).
    The result's "p_value" is the p the verdict rests on (adjusted when there is one).
    """
    p_value = test.get("p_holm", test["p_value"])
    adjusted = "holm" if "p_holm" in test else None

    def no_winner(reason: str = "") -> dict:
        return {
            "winner": None,
            "text": "no significant difference" + (f" ({reason})" if reason else ""),
            "p_value": p_value,
            "p_adjustment": adjusted,
        }

    if test["better"] is None or p_value >= ALPHA:
        return no_winner()
    mean_a, mean_b = seed_means
    if mean_a == mean_b or ((mean_a > mean_b) == higher_is_better) != (test["better"] == "a"):
        return no_winner("the test and the seed means disagree")
    if effect and effect.get("low") is not None and effect["low"] <= 0 <= effect["high"]:
        return no_winner("the seeds' 95% interval of the difference includes 0")
    winner = names[0] if test["better"] == "a" else names[1]
    return {"winner": winner, "text": f"{winner} is better", "p_value": p_value, "p_adjustment": adjusted}
