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
    "examples with a paired two-sided test at ALPHA = 0.05: Diebold-Mariano with the "
    "Harvey-Leybourne-Newbold correction on squared errors for forecasts, McNemar's exact test for "
    "classifications. The seeds give a second check: the 95% interval of the difference in the "
    "primary metric over seeds (Welch's t). A winner is named only when p < ALPHA, the seed means "
    "point the same way, and that interval excludes zero; otherwise the verdict is \"no significant "
    "difference\", with the reason."
)


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

    d_t = |e_a|^p - |e_b|^p. The long-run variance of d uses its autocovariances up to lag h-1
    (an h-step forecast's errors are MA(h-1)); the statistic is scaled by
    sqrt((n + 1 - 2h + h(h-1)/n) / n) and compared with Student's t on n-1 degrees of freedom.
    A positive statistic means model a has the larger loss.
    """
    import numpy as np
    from scipy import stats

    d = np.abs(np.asarray(errors_a, "float64")) ** power - np.abs(np.asarray(errors_b, "float64")) ** power
    n = len(d)
    if n < 3:
        raise ValueError("the Diebold-Mariano test needs at least 3 paired errors")
    centred = d - d.mean()
    autocov = [float(np.dot(centred[k:], centred[: n - k]) / n) for k in range(horizon)]
    variance = (autocov[0] + 2 * sum(autocov[1:])) / n
    if variance <= 0:  # identical losses: nothing to tell apart
        return {"test": "Diebold-Mariano (HLN)", "statistic": 0.0, "p_value": 1.0, "n": n, "better": None}
    dm = d.mean() / math.sqrt(variance)
    hln = dm * math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    p_value = float(2 * stats.t.sf(abs(hln), df=n - 1))
    better = None if hln == 0 else ("b" if hln > 0 else "a")
    return {"test": "Diebold-Mariano (HLN)", "statistic": float(hln), "p_value": p_value, "n": n, "better": better}


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
    return {"test": "McNemar exact", "statistic": float(only_a - only_b), "p_value": p_value,
            "only_a_correct": only_a, "only_b_correct": only_b, "n": int(len(correct_a)), "better": better}


def verdict(names: tuple[str, str], test: dict, seed_means: tuple[float, float], higher_is_better: bool,
            effect: dict | None = None) -> dict:
    """The winner of a against b under the rule in this module's docstring, or none.

    test: a paired test's result ("p_value", and "better": "a", "b" or None);
    seed_means: the primary metric's mean over seeds of a and of b;
    effect: difference_ci(a's seeds, b's seeds), the interval of b minus a (optional).
    """
    p_value = test["p_value"]

    def no_winner(reason: str = "") -> dict:
        return {"winner": None, "text": "no significant difference" + (f" ({reason})" if reason else ""),
                "p_value": p_value}

    if test["better"] is None or p_value >= ALPHA:
        return no_winner()
    mean_a, mean_b = seed_means
    if mean_a == mean_b or ((mean_a > mean_b) == higher_is_better) != (test["better"] == "a"):
        return no_winner("the test and the seed means disagree")
    if effect and effect.get("low") is not None and effect["low"] <= 0 <= effect["high"]:
        return no_winner("the seeds' 95% interval of the difference includes 0")
    winner = names[0] if test["better"] == "a" else names[1]
    return {"winner": winner, "text": f"{winner} is better", "p_value": p_value}
