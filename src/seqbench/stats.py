"""Intervals over seeds, the verdict's two-level paired bootstrap and four answers, and the tests
reported beside it (Diebold-Mariano, permutation, McNemar).

The verdict rule is VERDICT_RULE below; the report prints it.
"""

from __future__ import annotations

import math

ALPHA = 0.05
CONFIDENCE = 0.95
VERDICT_RULE = (
    "A verdict is about the number each model's row shows: the mean over its seeds of the primary "
    "metric on the test set, i.e. the expected score of a model trained by that recipe. Its "
    "uncertainty has two sources, which seeds were drawn and which test examples were drawn, and "
    "one procedure accounts for both and gives the difference's 95% interval and its p-value, so "
    "that the two always agree. The test examples' part: a paired bootstrap, 4,000 resamples with "
    "a fixed seed, the same examples for both models, each seed's score recomputed on each "
    "resample (forecasts: blocks of consecutive days, a stationary bootstrap with the block length "
    "of Politis and White, so that serial dependence is kept). The seeds' part: each cell's "
    "variance over its seeds divided by its seed count. Their sum gives a Student-t interval and "
    "p-value (Welch-Satterthwaite degrees of freedom). A dataset's comparisons (LSTM vs GRU, each "
    "cell vs the best baseline, which is chosen on validation) are one family: their p-values are "
    "adjusted by Holm's method. Each metric has a region of practical equivalence (ROPE, "
    "`verdict.rope` in params.yaml): differences inside it do not matter in practice. The verdict "
    "is one of four answers. A model is better when the whole interval lies outside the ROPE on its "
    "side and the Holm-adjusted p < 0.05. The two are practically equivalent when the whole "
    "interval lies inside the ROPE: pick the cheaper. Otherwise the comparison is undecided: more "
    "seeds (the report estimates how many) or more test data would decide it. A comparison with a "
    "cell none of whose seeds learned (each ended no better on validation than untrained) is void. "
    "Reported beside the verdict and never deciding: the probability that one seed of a model beats "
    "one seed of the other, Diebold-Mariano on the seeds' mean loss per forecast (forecasts), and "
    "the seed ensembles' paired permutation and McNemar tests (classifiers)."
)
BOOTSTRAP_RESAMPLES = 4000
BOOTSTRAP_SEED = 0  # fixed: the same interval and p-value for any number of workers
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
    2^n swaps when that is no more than `resamples`. The seed is fixed so the same predictions give
    the same p-value on any machine. The statistic is macro-F1(b) - macro-F1(a): positive when b is better.
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


# ---- the verdict's procedure: a two-level paired bootstrap ---------------------------------------


def item_resamples(n: int, resamples: int, rng, block_length: float | None = None):
    """[resamples, n] counts: how often each test example is drawn in each resample.

    block_length None: examples drawn independently. Otherwise a stationary bootstrap (Politis
    and Romano 1994, `arch`) with that expected block length: consecutive forecasts share news,
    so they are drawn in runs that keep their dependence.
    """
    import numpy as np

    if block_length is None:
        return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)
    from arch.bootstrap import StationaryBootstrap

    bootstrap = StationaryBootstrap(max(1.0, block_length), np.arange(n), seed=rng)
    return np.stack([np.bincount(data[0], minlength=n) for data, _ in bootstrap.bootstrap(resamples)])


def block_length_for(losses_a, losses_b) -> float:
    """The stationary bootstrap's expected block length for a loss differential (Politis and White
    2004, with Patton, Politis and White's 2009 correction; `arch.bootstrap.optimal_block_length`).
    Where that estimate does not exist (a series too short for its autocorrelations, or one with
    no variation), the rule of thumb n^(1/3); never longer than the series."""
    import warnings

    import numpy as np
    from arch.bootstrap import optimal_block_length

    differential = np.asarray(losses_b, "float64") - np.asarray(losses_a, "float64")
    n = len(differential)
    if np.ptp(differential) == 0:
        return 1.0
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            found = float(optimal_block_length(differential)["stationary"].iloc[0])
    except (ValueError, np.linalg.LinAlgError):
        found = float("nan")
    if not np.isfinite(found) or found <= 0:
        found = n ** (1 / 3)
    return float(min(max(found, 1.0), n))


def paired_bootstrap(
    items_a,
    items_b,
    combine,
    higher_is_better: bool,
    block_length: float | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict:
    """The difference b - a in the mean over seeds of a metric, with its 95% interval and p-value
    from its two sources of variance (see VERDICT_RULE).

    items_a, items_b: [seeds, examples, k] per-example statistics of each seed's test outputs, such
    that the metric is combine(their mean over examples) (e.g. squared errors and a square root
    for RMSE; per-class hits for macro-F1). A baseline has one "seed".

    The test examples' part of the variance comes from a paired bootstrap (the same resampled
    examples for both models, in blocks for forecasts, each seed's metric recomputed on them);
    the seeds' part from each cell's variance over seeds divided by its seed count. Their sum
    gives a Student-t interval and p with Welch-Satterthwaite degrees of freedom: a percentile
    bootstrap over 5 seeds would shrink their variance by 4/5 and give normal tails, and its
    interval excluded 0 in about 14% of simulated nulls (tests/unit/test_metrics_stats.py).
    The interval and p come from the same t statistic, so they always agree. The resamples,
    with each cell's seeds drawn with replacement, also give the interval of P(a seed of a beats
    a seed of b).
    """
    import numpy as np

    items_a, items_b = _as_items(items_a, "a"), _as_items(items_b, "b")
    n = items_a.shape[1]
    if items_b.shape[1] != n:
        raise ValueError("the bootstrap needs the same test examples for both models")
    rng = np.random.default_rng(seed)
    counts = item_resamples(n, resamples, rng, block_length)
    per_seed_a = _metric_per_seed(counts, items_a, combine)  # [resamples, seeds]
    per_seed_b = _metric_per_seed(counts, items_b, combine)
    full_a, full_b = combine(items_a.mean(axis=1)), combine(items_b.mean(axis=1))  # [seeds]
    difference = float(full_b.mean() - full_a.mean())
    variance_examples = float(np.var(per_seed_b.mean(axis=1) - per_seed_a.mean(axis=1), ddof=1))
    variance_seeds = [_seed_variance(full_a), _seed_variance(full_b)]
    seeds = [int(items_a.shape[0]), int(items_b.shape[0])]
    low, high, p_value, freedom = _t_interval(difference, variance_examples, variance_seeds, seeds)
    beats = _share_a_beats_b(_draw_seeds(per_seed_a, rng), _draw_seeds(per_seed_b, rng), higher_is_better)
    beats_low, beats_high = np.quantile(beats, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return {
        "method": "paired bootstrap over the test examples plus the seeds' variance, Student-t",
        "difference": difference,
        "low": low,
        "high": high,
        "p_value": p_value,
        "degrees_of_freedom": freedom,
        "resamples": resamples,
        "seed": seed,
        "block_length": block_length,
        "seeds": seeds,
        "a_beats_b": {
            "probability": float(_share_a_beats_b(full_a[None], full_b[None], higher_is_better)[0]),
            "low": float(beats_low),
            "high": float(beats_high),
        },
        # The variance of the difference from the test examples alone (seeds fixed), and each
        # model's variance over seeds (one seed's score): what more seeds would shrink.
        "variance_examples": variance_examples,
        "variance_seeds": variance_seeds,
    }


def _t_interval(difference: float, variance_examples: float, variance_seeds: list, seeds: list):
    """(low, high, p, degrees of freedom) of the difference: its variance is the examples' part
    plus each cell's seed variance over its seed count; Welch-Satterthwaite degrees of freedom,
    the examples' part counted as known (thousands of resamples). No seed part: normal."""
    import math

    from scipy import stats

    seed_parts = [(v / s, s - 1) for v, s in zip(variance_seeds, seeds) if s > 1 and v > 0]
    variance = variance_examples + sum(part for part, _ in seed_parts)
    if variance <= 0:  # every resample and seed alike: the difference is exact
        return difference, difference, (1.0 if difference == 0 else 0.0), math.inf
    freedom = variance**2 / sum(part**2 / df for part, df in seed_parts) if seed_parts else math.inf
    scale = math.sqrt(variance)
    half = float(stats.t.ppf((1 + CONFIDENCE) / 2, freedom)) * scale
    p_value = float(2 * stats.t.sf(abs(difference) / scale, freedom))
    return difference - half, difference + half, p_value, float(freedom)


def _as_items(items, model: str):
    import numpy as np

    items = np.asarray(items, "float64")
    if items.ndim == 2:  # one statistic per example
        items = items[:, :, None]
    if items.ndim != 3 or items.shape[0] == 0 or items.shape[1] == 0:
        raise ValueError("per-example statistics must be [seeds, examples, k] with at least one of each")
    if not np.isfinite(items).all():
        seed, example = np.argwhere(~np.isfinite(items))[0][:2]
        raise ValueError(f"model {model}: a non-finite score at seed {seed}, test example {example}")
    return items


def _metric_per_seed(counts, items, combine, chunk: int = 500):
    """[resamples, seeds]: each seed's metric on each resample of the examples (in chunks of
    resamples, so memory stays ~ chunk x examples whatever the resample count)."""
    import numpy as np

    parts = [
        combine(np.einsum("rn,snk->rsk", counts[start : start + chunk], items, optimize=True) / items.shape[1])
        for start in range(0, len(counts), chunk)
    ]
    return np.concatenate(parts)


def _draw_seeds(per_seed, rng):
    """The seeds of each resample drawn with replacement (a single seed stays as it is)."""
    import numpy as np

    resamples, seeds = per_seed.shape
    if seeds == 1:
        return per_seed
    drawn = rng.integers(0, seeds, size=(resamples, seeds))
    return np.take_along_axis(per_seed, drawn, axis=1)


def _share_a_beats_b(scores_a, scores_b, higher_is_better: bool):
    """Per row, the share of (seed of a, seed of b) pairs in which a's score is better; ties half."""
    import numpy as np

    a, b = scores_a[:, :, None], scores_b[:, None, :]
    better = (a > b) if higher_is_better else (a < b)
    return np.mean(better + 0.5 * (a == b), axis=(1, 2))


def _seed_variance(scores) -> float:
    import numpy as np

    return float(np.var(scores, ddof=1)) if len(scores) > 1 else 0.0


MOST_SEEDS = 100  # beyond this, "more than 100 seeds" is all the estimate says


def seeds_to_decide(effect: dict, rope: float, family: int = 1) -> int | None:
    """Seeds per cell expected to decide an undecided comparison, if the effect stays as observed.

    The interval's half-width is about z * sqrt(V_examples + (v_a + v_b) / S) with S seeds per
    cell; it decides once it no longer straddles a ROPE edge: half-width < | |difference| - rope |.
    z is taken at Holm's strictest level for a family of `family` comparisons, so the estimate
    does not promise a decision the adjusted p would then refuse. None when no number of seeds
    can: the test examples' own noise is wider than that margin (or the difference sits on the
    ROPE's edge), and only more test data would decide. Capped at MOST_SEEDS + 1.
    """
    from scipy.stats import norm

    z = norm.ppf(1 - ALPHA / (2 * max(family, 1)))
    margin = abs(abs(effect["difference"]) - rope)
    room = (margin / z) ** 2 - effect["variance_examples"]
    seed_variance = sum(v for v, n in zip(effect["variance_seeds"], effect["seeds"]) if n > 1)
    if room <= 0 or seed_variance <= 0:
        return None
    return min(max(math.ceil(seed_variance / room), max(effect["seeds"]) + 1), MOST_SEEDS + 1)


def verdict(
    names: tuple[str, str], effect: dict, p_value: float, rope: float, higher_is_better: bool, family: int = 1
) -> dict:
    """One of the four answers for a against b (VERDICT_RULE).

    effect: paired_bootstrap's result (b minus a); p_value: the p the verdict rests on (Holm's,
    within the dataset's family); rope: the region of practical equivalence's half-width in the
    metric's units (>= 0); family: the number of comparisons Holm adjusted together.
    """
    low, high = effect["low"], effect["high"]
    b_ahead = low > rope if higher_is_better else high < -rope
    a_ahead = high < -rope if higher_is_better else low > rope
    common = {"p_value": p_value, "p_adjustment": "holm", "rope": rope}
    if (a_ahead or b_ahead) and p_value < ALPHA:
        winner = names[1] if b_ahead else names[0]
        answer = "b_better" if b_ahead else "a_better"
        return {"answer": answer, "winner": winner, "text": f"{winner} is better", **common}
    if -rope < low and high < rope:
        return {"answer": "equivalent", "winner": None, "text": "practically equivalent", **common}
    needed = seeds_to_decide(effect, rope, family)
    return {
        "answer": "undecided",
        "winner": None,
        "text": "undecided",
        "reason": _undecided_reason(low, high, rope, p_value, needed),
        "seeds_to_decide": needed,
        **common,
    }


def _undecided_reason(low: float, high: float, rope: float, p_value: float, needed: int | None) -> str:
    if (low > rope or high < -rope) and p_value >= ALPHA:
        why = f"the interval lies outside the ROPE, but Holm's p = {p_value:.3g} is not below {ALPHA}"
    elif low > 0 or high < 0:
        why = "the difference is not 0, but the interval reaches into the ROPE: it may not matter"
    else:
        why = "the interval reaches both inside and outside the ROPE"
    if needed is None:
        return why + "; more seeds alone would not decide it (the test set's own noise is too wide)"
    if needed > MOST_SEEDS:
        return why + f"; more than {MOST_SEEDS} seeds per cell would be needed to decide it"
    return why + f"; about {needed} seeds per cell would be expected to decide it"
