"""Scores against hand-computed values; the paired tests against statsmodels and known results."""

import math

import numpy as np
import pytest

from seqbench.metrics import classification_metrics, forecast_metrics
from seqbench.stats import ALPHA, diebold_mariano, difference_ci, mcnemar_exact, mean_ci, verdict


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
    assert got["mase"] == pytest.approx(np.mean(np.abs(price_errors)) / 2.0)
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


def test_difference_ci_against_a_single_baseline_value_shifts_the_seed_interval():
    got = difference_ci([1.0, 2.0, 3.0], [10.0])
    seeds = mean_ci([1.0, 2.0, 3.0])
    assert got["difference"] == 8.0
    assert got["low"] == pytest.approx(10.0 - seeds["high"]) and got["high"] == pytest.approx(10.0 - seeds["low"])


@pytest.mark.parametrize("horizon", [1, 3])
def test_diebold_mariano_matches_statsmodels_hac_regression(horizon):
    """DM is the t-statistic of the mean loss differential with a rectangular-kernel long-run
    variance over h-1 lags; statsmodels computes that as OLS on a constant with HAC errors."""
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    e_a, e_b = rng.normal(0, 1.0, 300), rng.normal(0, 1.1, 300)
    got = diebold_mariano(e_a, e_b, horizon=horizon)
    d = e_a**2 - e_b**2
    fit = sm.OLS(d, np.ones_like(d)).fit(
        cov_type="HAC", cov_kwds={"maxlags": horizon - 1, "kernel": "uniform", "use_correction": False}
    )
    n = len(d)
    hln = math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    assert got["statistic"] == pytest.approx(fit.tvalues[0] * hln, rel=1e-9)
    from scipy import stats

    assert got["p_value"] == pytest.approx(2 * stats.t.sf(abs(fit.tvalues[0] * hln), n - 1))


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


def test_identical_predictions_give_no_significant_difference():
    rng = np.random.default_rng(2)
    errors = rng.normal(size=200)
    dm = diebold_mariano(errors, errors.copy())
    assert dm["p_value"] == 1.0
    assert verdict(("lstm", "gru"), dm, (0.5, 0.5), higher_is_better=False)["winner"] is None
    correct = rng.random(200) < 0.7
    mc = mcnemar_exact(correct, correct.copy())
    got = verdict(("lstm", "gru"), mc, (0.7, 0.7), higher_is_better=True)
    assert got["winner"] is None and got["text"] == "no significant difference"


def test_verdict_names_a_winner_only_when_test_and_seed_means_agree():
    significant = {"p_value": ALPHA / 10, "better": "b"}
    assert verdict(("lstm", "gru"), significant, (0.70, 0.80), higher_is_better=True)["winner"] == "gru"
    # Lower is better (RMSE): b's smaller mean agrees with the test.
    assert verdict(("lstm", "gru"), significant, (1.2, 1.1), higher_is_better=False)["winner"] == "gru"
    # The seed means point the other way: no winner claimed.
    assert verdict(("lstm", "gru"), significant, (0.80, 0.70), higher_is_better=True)["winner"] is None
    not_significant = {"p_value": ALPHA, "better": "b"}
    assert verdict(("lstm", "gru"), not_significant, (0.70, 0.80), higher_is_better=True)["winner"] is None


def test_verdict_needs_the_seeds_interval_to_exclude_zero():
    significant = {"p_value": ALPHA / 10, "better": "b"}
    spread = {"difference": 0.05, "low": -0.01, "high": 0.11}
    got = verdict(("lstm", "gru"), significant, (0.70, 0.75), True, spread)
    assert got["winner"] is None and "includes 0" in got["text"]
    clear = {"difference": 0.05, "low": 0.02, "high": 0.08}
    assert verdict(("lstm", "gru"), significant, (0.70, 0.75), True, clear)["winner"] == "gru"
