"""Scores against hand-computed values; the paired tests against statsmodels and known results."""

import math

import numpy as np
import pytest

from seqbench.metrics import classification_metrics, forecast_metrics
from seqbench.stats import (
    ALPHA,
    diebold_mariano,
    holm,
    macro_f1,
    mcnemar_exact,
    mean_ci,
    paired_bootstrap,
    paired_permutation_f1,
    seeds_to_decide,
    verdict,
)


def test_forecast_metrics_by_hand():
    actual = np.array([0.01, -0.02, 0.03, 0.00])
    predicted = np.array([0.00, -0.01, 0.01, 0.01])
    last_close = np.array([100.0, 101.0, 99.0, 102.0])
    actual_close = last_close * np.exp(actual)
    got = forecast_metrics(actual, predicted, last_close, actual_close, naive_scale=2.0)
    errors = predicted - actual  # -0.01, 0.01, -0.02, 0.01
    assert got["rmse"] == pytest.approx(math.sqrt((1 + 1 + 4 + 1) * 1e-4 / 4))
    assert got["mae"] == pytest.approx(0.05 / 4)
    price_errors = last_close * np.exp(predicted) - actual_close
    assert got["price_rmse"] == pytest.approx(math.sqrt(np.mean(price_errors**2)))
    # MASE on the log scale: the MAE of the return forecast over the random walk's in-sample MAE.
    assert got["mase"] == pytest.approx(0.0125 / 2.0)
    # Theil's U: RMSE against the zero-return forecast's RMSE on the same days.
    assert got["theils_u"] == pytest.approx(math.sqrt(np.sum(errors**2) / np.sum(actual**2)))
    # (actual, predicted) signs: (+, 0) (-, -) (+, +) (0, +) -> 2 of 4 agree
    assert got["directional_accuracy"] == pytest.approx(0.5)


def test_the_random_walk_has_theils_u_1_and_no_direction():
    actual = np.array([0.01, -0.02, 0.03])
    close = np.array([10.0, 11.0, 12.0])
    got = forecast_metrics(actual, np.zeros(3), close, close * np.exp(actual), naive_scale=1.0)
    assert got["theils_u"] == pytest.approx(1.0)
    assert got["directional_accuracy"] is None


def test_classification_metrics_by_hand():
    labels = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]])  # predicts 0, 1, 1, 1
    got = classification_metrics(labels, probabilities, 2)
    assert got["accuracy"] == pytest.approx(0.75)
    assert got["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    f1_class0 = 2 * 1.0 * 0.5 / 1.5  # precision 1, recall 1/2
    f1_class1 = 2 * (2 / 3) * 1.0 / (2 / 3 + 1)  # precision 2/3, recall 1
    assert got["macro_f1"] == pytest.approx((f1_class0 + f1_class1) / 2)
    # Positive scores 0.7, 0.8 against negatives 0.1, 0.6: all 4 pairs ranked right.
    assert got["roc_auc"] == pytest.approx(1.0)
    assert got["confusion_matrix"] == [[1, 1], [0, 2]]


def test_mean_ci_is_the_student_t_interval():
    got = mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert got["mean"] == 2.0
    assert got["low"] == pytest.approx(2.0 - half) and got["high"] == pytest.approx(2.0 + half)
    assert mean_ci([0.9, 0.95, 1.0], bounds=(0, 1))["high"] == 1.0
    assert mean_ci([5.0])["low"] is None


def statsmodels_dm(d, horizon: int) -> float:
    """DM before the HLN factor: the t-statistic of the mean loss differential, as OLS on a constant
    with HAC errors, the uniform kernel (every lag up to h-1 weighed 1)."""
    import statsmodels.api as sm

    fit = sm.OLS(d, np.ones_like(d)).fit(
        cov_type="HAC", cov_kwds={"maxlags": horizon - 1, "kernel": "uniform", "use_correction": False}
    )
    return float(fit.tvalues[0])


def hln_factor(n: int, horizon: int) -> float:
    return math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)


@pytest.mark.parametrize("horizon", [1, 3, 5])
def test_diebold_mariano_matches_statsmodels_hac_regression(horizon):
    """DM is the t-statistic of the mean loss differential with the unweighted long-run variance
    over h-1 lags, times the HLN factor, against Student's t on n-1 degrees of freedom."""
    from scipy import stats

    rng = np.random.default_rng(0)
    shock = rng.normal(size=300 + horizon)
    e_a = np.convolve(shock, np.ones(horizon), "valid")[:300]  # MA(h-1), as h-step errors are
    e_b = rng.normal(0, 1.1, 300)
    got = diebold_mariano(e_a, e_b, horizon=horizon)
    expected = statsmodels_dm(e_a**2 - e_b**2, horizon) * hln_factor(300, horizon)
    assert got["statistic"] == pytest.approx(expected, rel=1e-9)
    assert got["p_value"] == pytest.approx(2 * stats.t.sf(abs(expected), 299))
    assert got["long_run_variance"] == f"autocovariances at lags 0-{horizon - 1}, unweighted"


def test_diebold_mariano_holds_its_size_for_a_five_step_horizon():
    """Under equal accuracy, an MA(4) loss differential (the 5-day volatility target's) must be
    rejected at nominal 5% about 5% of the time. Bartlett weights gave about 11%."""
    rng = np.random.default_rng(7)
    n, horizon, trials = 500, 5, 2000
    rejected = 0
    for _ in range(trials):
        shock = rng.normal(size=n + horizon - 1)
        d = np.convolve(shock, np.ones(horizon), "valid")  # mean 0: neither model is better
        # With power 1 and both errors positive, |e_a| - |e_b| is d itself.
        rejected += diebold_mariano(d + 100.0, np.full(n, 100.0), horizon=horizon, power=1)["p_value"] < 0.05
    assert 0.03 <= rejected / trials <= 0.07  # 4.9% here; Bartlett weights: 10.7% on the same draws


def test_under_a_persistent_ar1_null_the_block_bootstrap_is_far_closer_to_its_level_than_dm_or_iid():
    """A persistent AR(1) loss differential (phi 0.9, n 500: about 26 independent points) under
    equal accuracy. DM truncated at lag h-1 cannot see the persistence (28% rejected at nominal 5%
    with h = 5 here), which is one reason it is reported and does not decide; resampling forecasts
    one by one is worse (68%). The verdict's stationary block bootstrap rejects 15%: still above
    5% at this persistence and length, far below both."""
    from seqbench.stats import block_length_for

    rng = np.random.default_rng(12)
    n, trials = 500, 120
    rejected = {"dm": 0, "blocks": 0, "iid": 0}
    for _ in range(trials):
        shocks = rng.normal(size=n + 200)
        d = np.zeros(n + 200)
        for i in range(1, n + 200):
            d[i] = 0.9 * d[i - 1] + shocks[i]
        a, b = 100.0 + d[200:], np.full(n, 100.0)
        rejected["dm"] += diebold_mariano(a, b, horizon=5, power=1)["p_value"] < 0.05
        blocks = block_length_for(a, b)
        for key, block in (("blocks", blocks), ("iid", None)):
            got = paired_bootstrap(a[None], b[None], lambda m: m[..., 0], False, block_length=block, resamples=400)
            rejected[key] += got["p_value"] < 0.05
    rate = {key: count / trials for key, count in rejected.items()}
    assert rate["blocks"] <= 0.2 and rate["blocks"] < rate["dm"] and rate["blocks"] < rate["iid"] / 3


def test_diebold_mariano_falls_back_to_lag_zero_where_the_unweighted_sum_is_negative():
    """An alternating loss differential has a lag-1 autocovariance near -gamma_0, so gamma_0 +
    2 gamma_1 < 0: the test falls back to h = 1 (as R's forecast::dm.test) rather than give up
    (p = 1) on a clear gap, and says so."""
    rng = np.random.default_rng(3)
    n, horizon = 200, 2
    d = 1.0 + 0.9 * (-1.0) ** np.arange(n) + rng.uniform(-0.05, 0.05, n)  # a always worse, by 1 on average
    centred = d - d.mean()
    gamma0, gamma1 = centred @ centred / n, centred[1:] @ centred[:-1] / n
    assert gamma0 + 2 * gamma1 < 0
    got = diebold_mariano(np.sqrt(d), np.zeros(n), horizon=horizon)
    assert got["statistic"] == pytest.approx(statsmodels_dm(d, 1) * hln_factor(n, 1), rel=1e-9)
    assert got["p_value"] < 1e-6 and got["better"] == "b"
    assert got["long_run_variance"].startswith("lag 0 only")


def test_diebold_mariano_sees_a_clearly_better_forecast():
    rng = np.random.default_rng(1)
    actual = rng.normal(size=500)
    good, bad = actual + rng.normal(0, 0.1, 500), actual + rng.normal(0, 1.0, 500)
    got = diebold_mariano(bad - actual, good - actual)
    assert got["p_value"] < 1e-6 and got["better"] == "b"


def test_mcnemar_exact_against_the_binomial_by_hand_and_statsmodels():
    from statsmodels.stats.contingency_tables import mcnemar

    # 1 example only a gets right, 9 only b, 40 both, 0 neither.
    correct_a = np.array([True] * 41 + [False] * 9)
    correct_b = np.array([True] * 40 + [False] + [True] * 9)
    got = mcnemar_exact(correct_a, correct_b)
    assert got["p_value"] == pytest.approx(2 * (1 + 10) / 2**10)  # 2 * P(X <= 1), X ~ Bin(10, 1/2)
    table = [[40, 1], [9, 0]]
    assert got["p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue)
    assert got["better"] == "b"


def effect(low: float, high: float, difference: float | None = None) -> dict:
    """A bootstrap result with the given interval (b minus a) and no spread left to shrink."""
    return {
        "difference": (low + high) / 2 if difference is None else difference,
        "low": low,
        "high": high,
        "variance_examples": 0.0,
        "variance_seeds": [1e-4, 1e-4],
        "seeds": [5, 5],
    }


def test_the_four_answers_follow_the_interval_the_rope_and_holms_p():
    names = ("lstm", "gru")
    assert verdict(names, effect(0.03, 0.08), ALPHA / 10, 0.01, True)["answer"] == "b_better"
    assert verdict(names, effect(0.03, 0.08), ALPHA / 10, 0.01, True)["winner"] == "gru"
    assert verdict(names, effect(-0.08, -0.03), ALPHA / 10, 0.01, True)["winner"] == "lstm"
    # Lower is better (RMSE): b's lower score is b better.
    assert verdict(names, effect(-0.08, -0.03), ALPHA / 10, 0.01, False)["winner"] == "gru"
    # Inside the ROPE: equivalent, whatever the p.
    assert verdict(names, effect(-0.004, 0.008), 0.001, 0.01, True)["answer"] == "equivalent"
    # Not 0, but reaching into the ROPE: undecided, and it says why.
    got = verdict(names, effect(0.005, 0.03), ALPHA / 10, 0.01, True)
    assert got["answer"] == "undecided" and got["winner"] is None and "into the ROPE" in got["reason"]
    # Outside the ROPE, but Holm's p not below ALPHA: undecided.
    got = verdict(names, effect(0.03, 0.08), ALPHA * 1.5, 0.01, True)
    assert got["answer"] == "undecided" and "Holm" in got["reason"] and got["p_value"] == ALPHA * 1.5
    # A ROPE of 0 can never say equivalent.
    assert verdict(names, effect(-0.001, 0.001), 0.9, 0.0, True)["answer"] == "undecided"


def test_seeds_to_decide_shrinks_the_seed_part_only():
    # margin 0.02 - 0.01 = 0.01; (0.01 / 1.96)^2 = 2.6e-5 of room; seed variance 2e-4 -> 8 seeds.
    wide = {"difference": 0.02, "variance_examples": 0.0, "variance_seeds": [1e-4, 1e-4], "seeds": [5, 5]}
    assert seeds_to_decide(wide, 0.01) == math.ceil(2e-4 / (0.01 / 1.959963984540054) ** 2)
    # The test examples alone are noisier than the margin: no number of seeds decides it.
    assert seeds_to_decide({**wide, "variance_examples": 1e-4}, 0.01) is None
    # Never fewer than one more than the seeds already run.
    assert seeds_to_decide({**wide, "difference": 0.5}, 0.01) == 6
    # Against Holm's strictest level for 3 comparisons, more; never more than MOST_SEEDS + 1.
    assert seeds_to_decide(wide, 0.01, family=3) > seeds_to_decide(wide, 0.01)
    assert seeds_to_decide({**wide, "difference": 0.0101}, 0.01) == 101


def squared_errors(rng, n: int, seeds: int, shift: float):
    truth = rng.normal(size=n)
    return truth, [(truth - (truth + shift + rng.normal(0, 0.5, n))) ** 2 for _ in range(seeds)]


def test_the_bootstrap_difference_is_the_difference_of_the_seed_means():
    rng = np.random.default_rng(3)
    _, a = squared_errors(rng, 300, 5, 0.0)
    _, b = squared_errors(rng, 300, 5, 0.3)
    got = paired_bootstrap(a, b, lambda m: np.sqrt(m[..., 0]), higher_is_better=False, resamples=500)
    rmse_a = [math.sqrt(np.mean(e)) for e in a]
    rmse_b = [math.sqrt(np.mean(e)) for e in b]
    assert got["difference"] == pytest.approx(np.mean(rmse_b) - np.mean(rmse_a))
    assert got["low"] < got["difference"] < got["high"]
    assert got["low"] > 0 and got["p_value"] < ALPHA  # b is clearly worse: the interval excludes 0
    assert got["a_beats_b"]["probability"] == 1.0  # every seed of a beats every seed of b
    # The same seed gives the same numbers; a baseline (one "seed") is not resampled over seeds.
    again = paired_bootstrap(a, b, lambda m: np.sqrt(m[..., 0]), higher_is_better=False, resamples=500)
    assert again == got
    baseline = paired_bootstrap(a, b[:1], lambda m: np.sqrt(m[..., 0]), False, resamples=500)
    assert baseline["seeds"] == [5, 1] and baseline["variance_seeds"][1] == 0.0


@pytest.mark.parametrize("seeds_b", [5, 1])  # a cell, or a deterministic baseline
def test_the_interval_and_p_agree_and_hold_their_level_under_the_null(seeds_b):
    """Equal expected scores, with noise from both sources: each seed shifts its score, each test
    example is hard or easy. The 95% interval should exclude the true difference (0) about 5% of
    the time, and p < 0.05 exactly when it does. A percentile bootstrap over the 5 seeds excluded
    0 in about 14% of such nulls."""
    rng = np.random.default_rng(11)

    def model(seeds: int, n: int = 200):
        if seeds == 1:  # a baseline: one fixed forecast, no seed to draw
            return [np.abs(rng.normal(0, 1, n))]
        return [np.abs(rng.normal(0, 1, n)) + rng.normal(0, 0.05) for _ in range(seeds)]

    trials, excluded = 200, 0
    for _ in range(trials):
        got = paired_bootstrap(model(5), model(seeds_b), lambda m: m[..., 0], higher_is_better=False, resamples=300)
        outside = got["low"] > 0 or got["high"] < 0
        excluded += outside
        assert outside == (got["p_value"] < ALPHA)  # one t statistic gives both
    assert excluded / trials <= 0.09  # 5% expected; 0.09 or more has probability < 1% at n = 200


def test_a_non_finite_score_is_a_clear_error():
    scores = np.ones((2, 10))
    scores[1, 3] = np.nan
    with pytest.raises(ValueError, match="model b: a non-finite score at seed 1, test example 3"):
        paired_bootstrap(np.ones((2, 10)), scores, lambda m: m[..., 0], False, resamples=10)


def test_a_block_bootstrap_widens_the_interval_of_dependent_forecasts():
    from seqbench.stats import block_length_for

    rng = np.random.default_rng(5)
    n = 600
    shared = np.convolve(rng.normal(size=n + 19), np.ones(20) / 20, mode="valid")  # slow news
    a = [np.abs(shared + rng.normal(0, 0.05, n)) for _ in range(3)]
    b = [np.abs(shared * 1.5 + rng.normal(0, 0.05, n)) for _ in range(3)]
    block = block_length_for(np.mean(a, axis=0), np.mean(b, axis=0))
    assert block > 5
    # Six forecasts are too few for the estimate: the rule of thumb n^(1/3) instead of an error.
    assert block_length_for(a[0][:6], b[0][:6]) == pytest.approx(6 ** (1 / 3))
    iid = paired_bootstrap(a, b, lambda m: m[..., 0], False, resamples=500)
    blocks = paired_bootstrap(a, b, lambda m: m[..., 0], False, block_length=block, resamples=500)
    assert blocks["high"] - blocks["low"] > 1.5 * (iid["high"] - iid["low"])


def test_macro_f1_matches_sklearn_one_at_a_time_and_in_a_batch():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 50)  # class 3 never occurs: zero_division=0 scores it 0
    batch = rng.integers(0, 4, (20, 50))
    expected = [f1_score(labels, row, average="macro", labels=range(4), zero_division=0) for row in batch]
    assert macro_f1(labels, batch, 4) == pytest.approx(expected, abs=1e-12)
    assert float(macro_f1(labels, batch[0], 4)) == pytest.approx(expected[0], abs=1e-12)


def sklearn_macro_f1(labels, predicted, num_classes) -> float:
    from sklearn.metrics import f1_score

    return f1_score(labels, predicted, average="macro", labels=range(num_classes), zero_division=0)


def exact_permutation_p(labels, pred_a, pred_b, num_classes, score=sklearn_macro_f1) -> float:
    """All 2^n ways to swap each example's two predictions: P(|F1(b) - F1(a)| >= |observed|)."""
    import itertools

    def difference(a, b):
        return score(labels, b, num_classes) - score(labels, a, num_classes)

    observed = abs(difference(pred_a, pred_b))
    hits = 0
    for swaps in itertools.product([False, True], repeat=len(labels)):
        swap = np.array(swaps)
        a, b = np.where(swap, pred_b, pred_a), np.where(swap, pred_a, pred_b)
        hits += abs(difference(a, b)) >= observed - 1e-12
    return hits / 2 ** len(labels)


def test_paired_permutation_matches_exact_enumeration():
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 3, 10)
    pred_a = np.where(rng.random(10) < 0.5, labels, rng.integers(0, 3, 10))
    pred_b = np.where(rng.random(10) < 0.9, labels, rng.integers(0, 3, 10))
    got = paired_permutation_f1(labels, pred_a, pred_b, 3)
    assert got["resamples"] == 2**10  # fewer swaps than resamples: scipy enumerates them all
    assert got["p_value"] == pytest.approx(exact_permutation_p(labels, pred_a, pred_b, 3), abs=1e-12)
    assert 0 < got["p_value"] < 1
    assert got["better"] == ("b" if got["statistic"] > 0 else "a")


def test_paired_permutation_resampled_is_near_exact_and_the_same_every_time():
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 2, 15)
    pred_a = np.where(rng.random(15) < 0.6, labels, 1 - labels)
    pred_b = np.where(rng.random(15) < 0.9, labels, 1 - labels)
    got = paired_permutation_f1(labels, pred_a, pred_b, 2)
    assert got["resamples"] == 9999  # 2^15 swaps are more: a fixed-seed random sample of them
    # The Monte Carlo error of a p-value from 9,999 resamples is at most ~0.005. (sklearn's 3 ms a
    # call is too slow for 2^15 swaps; macro_f1 is checked against it above.)
    exact = exact_permutation_p(labels, pred_a, pred_b, 2, score=lambda *args: float(macro_f1(*args)))
    assert got["p_value"] == pytest.approx(exact, abs=0.02)
    assert paired_permutation_f1(labels, pred_a, pred_b, 2) == got


def test_paired_permutation_sees_a_clear_difference_and_none_between_equals():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, 300)
    good = np.where(rng.random(300) < 0.9, labels, rng.integers(0, 3, 300))
    poor = np.where(rng.random(300) < 0.4, labels, rng.integers(0, 3, 300))
    got = paired_permutation_f1(labels, good, poor, 3)
    assert got["p_value"] < 1e-3 and got["better"] == "a" and got["statistic"] < 0
    same = paired_permutation_f1(labels, good, good.copy(), 3)
    assert same["p_value"] == 1.0 and same["better"] is None and same["statistic"] == 0.0


def test_holm_by_hand():
    # Sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 -> 0.06 (never below the one before).
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]) == [0.02] and holm([]) == []


def test_classifier_comparisons_decide_on_the_seed_mean_and_report_the_ensembles_tests():
    from seqbench.kinds.classify import ClassifierScorer
    from seqbench.stages.evaluate import assemble

    rng = np.random.default_rng(8)
    labels = rng.integers(0, 3, 120)
    arrays = {"labels": labels, "idx_test": np.arange(120)}
    meta = {"task": "classify", "labels": ["a", "b", "c"], "sizes": {"train": 0, "val": 0, "test": 120}}

    def probabilities(right: float):
        predicted = np.where(rng.random(120) < right, labels, rng.integers(0, 3, 120))
        return np.eye(3)[predicted] * 0.7 + 0.1

    outputs = {("lstm", s): probabilities(0.95) for s in (0, 1, 2)}
    outputs |= {("gru", s): probabilities(0.5) for s in (0, 1, 2)}
    scorer = ClassifierScorer(arrays, meta)
    best = {"name": "majority", "metric": "macro_f1", "validation_scores": {"majority": 0.2}}
    baselines = {"majority": np.full((120, 3), 1 / 3)}
    result, _ = assemble(
        "toy", "text", meta, scorer, outputs, baselines, ["lstm", "gru"], [0, 1, 2], best, (0.01, False)
    )
    found = result["comparisons"]
    assert [(c["a"], c["b"]) for c in found] == [("lstm", "gru"), ("lstm", "majority"), ("gru", "majority")]
    for key, name in (("ensemble_test", "Paired permutation (macro-F1)"), ("accuracy_test", "McNemar exact")):
        assert all(c["beside"][key]["test"] == name and c["beside"][key]["on"] == "the seed ensembles" for c in found)
        adjusted = holm([c["beside"][key]["p_value"] for c in found])
        assert [c["beside"][key]["p_holm"] for c in found] == pytest.approx(adjusted)
    assert [c["effect"]["p_holm"] for c in found] == pytest.approx(holm([c["effect"]["p_value"] for c in found]))
    head = found[0]
    # The effect is the headline's: the difference of the seed means of macro-F1.
    means = {cell: result["models"][cell]["summary"]["macro_f1"]["mean"] for cell in ("lstm", "gru")}
    assert head["effect"]["difference"] == pytest.approx(means["gru"] - means["lstm"])
    assert head["verdict"]["winner"] == "lstm" and head["verdict"]["p_value"] == head["effect"]["p_holm"]
    assert result["rope"] == {"metric": "macro_f1", "width": 0.01, "relative": None}


def test_macro_f1_from_per_example_hits_is_the_scorers_macro_f1():
    from seqbench.kinds.classify import ClassifierScorer

    rng = np.random.default_rng(9)
    labels = rng.integers(0, 4, 80)
    scorer = ClassifierScorer({"labels": labels, "idx_test": np.arange(80)}, {"labels": list("abcd")})
    output = rng.dirichlet(np.ones(4), 80)
    got = scorer.primary_from_means(scorer.primary_items(output).mean(axis=0))
    assert got == pytest.approx(scorer.scores(output)["macro_f1"])


def test_the_forest_plot_says_more_than_the_cap_not_the_cap():
    from seqbench.stages.report.figures import _verdict_text
    from seqbench.stats import MOST_SEEDS

    undecided = {"text": "undecided", "p_value": 0.3, "p_adjustment": "holm"}
    assert "about 14 seeds per cell" in _verdict_text({**undecided, "seeds_to_decide": 14})
    capped = _verdict_text({**undecided, "seeds_to_decide": MOST_SEEDS + 1})
    assert f"more than {MOST_SEEDS} seeds" in capped and str(MOST_SEEDS + 1) not in capped


def test_a_cell_that_did_not_learn_leaves_the_holm_family():
    from seqbench.kinds.classify import ClassifierScorer
    from seqbench.stages.evaluate import assemble

    rng = np.random.default_rng(8)
    labels = rng.integers(0, 2, 100)
    arrays = {"labels": labels, "idx_test": np.arange(100)}
    meta = {"task": "classify", "labels": ["a", "b"], "sizes": {"train": 0, "val": 0, "test": 100}}
    right = np.eye(2)[np.where(rng.random(100) < 0.8, labels, 1 - labels)]
    outputs = {("lstm", s): right for s in (0, 1)} | {("gru", s): np.full((100, 2), 0.5) for s in (0, 1)}
    best = {"name": "majority", "metric": "macro_f1", "validation_scores": {}}
    stuck = {"gru": "did not learn: no seed of gru ended better than untrained"}
    result, _ = assemble(
        "toy",
        "text",
        meta,
        ClassifierScorer(arrays, meta),
        outputs,
        {"majority": np.full((100, 2), 0.5)},
        ["lstm", "gru"],
        [0, 1],
        best,
        (0.01, False),
        stuck,
    )
    by_pair = {(c["a"], c["b"]): c for c in result["comparisons"]}
    alone = by_pair[("lstm", "majority")]
    assert alone["effect"]["p_holm"] == alone["effect"]["p_value"]  # a family of one
    for pair in (("lstm", "gru"), ("gru", "majority")):
        assert by_pair[pair]["effect"]["p_holm"] is None and by_pair[pair]["verdict"]["answer"] == "void"
    assert result["did_not_learn"] == stuck
