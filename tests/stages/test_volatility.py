"""Stock volatility and return forecasts: the volatility target and its baselines (HAR-RV, log-HAR,
EWMA, GARCH), on the test split and on validation (fit on the training period only), every model's
calibration on validation, the forecast metrics against hand-computed values, the void rule, and
bad settings."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from helpers import STOCK, assert_clean_failure, stock_frame
from seqbench.config import parse_params
from seqbench.kinds import stock, volatility
from seqbench.kinds.returns import ReturnScorer, return_truth
from seqbench.metrics import forecast_metrics, qlike_losses, smearing_factor, volatility_metrics

LN2 = math.log(2)


def dataset(**fields):
    return parse_params({"datasets": {"d": {**STOCK, **fields}}}).dataset("d")


def garch_prices(days: int = 600, seed: int = 0, symbol: str | None = None) -> pd.DataFrame:
    """OHLC prices whose daily returns follow a GARCH(1,1): volatility clusters, as in markets."""
    rng = np.random.default_rng(seed)
    omega, alpha, beta = 2e-6, 0.08, 0.9
    variance, returns = omega / (1 - alpha - beta), []
    for _ in range(days):
        returns.append(math.sqrt(variance) * rng.standard_normal())
        variance = omega + alpha * returns[-1] ** 2 + beta * variance
    frame = stock_frame(days, symbol=symbol)
    close = 100 * np.exp(np.cumsum(returns))
    frame["close"], frame["open"] = close, close * np.exp(rng.normal(0, 0.002, days))
    spread = np.abs(rng.normal(0, 0.006, days))
    frame["high"] = np.maximum(frame["open"], close) * np.exp(spread)
    frame["low"] = np.minimum(frame["open"], close) * np.exp(-spread)
    return frame


def prepared(frame: pd.DataFrame, **fields):
    cfg = dataset(**{"lookback": 10, "splits": {"validation": 0.2, "test": 0.2}, **fields})
    df = stock.canonicalize({None: frame}, cfg)
    return (*stock.prepare(df, cfg), df)


# ---- forecast metrics by hand ----------------------------------------------------------------


def test_qlike_mse_log_and_mz_r2_by_hand():
    # Realised variances 1 and 4 against forecasts 2 and 2: RV/h = 1/2 and 2.
    actual, predicted = np.log([1.0, 4.0]), np.log([2.0, 2.0])
    losses = qlike_losses(actual, predicted)
    assert losses == pytest.approx([0.5 - math.log(0.5) - 1, 2 - math.log(2) - 1])
    got = volatility_metrics(actual, predicted)
    assert got["qlike"] == pytest.approx((0.5 + LN2 - 1 + 2 - LN2 - 1) / 2)  # = 0.25
    assert got["mse_log"] == pytest.approx(LN2**2)  # both logs miss by ln 2
    assert got["mz_r2"] == 0.0  # a constant forecast explains nothing
    # Log forecasts on a line with the log realised variance explain all of it ...
    assert volatility_metrics([0.0, 1.0, 2.0], [0.0, 2.0, 4.0])["mz_r2"] == pytest.approx(1.0)
    # ... and ones uncorrelated with it (centred: -1, 0, 1 against 1/3, -2/3, 1/3) nothing.
    assert volatility_metrics([0.0, 1.0, 2.0], [1.0, 0.0, 1.0])["mz_r2"] == pytest.approx(0.0, abs=1e-12)
    # A perfect forecast has QLIKE 0.
    assert volatility_metrics(actual, actual)["qlike"] == pytest.approx(0.0)


def test_smearing_factor_is_the_qlike_optimal_scale():
    actual, predicted = np.log([1.0, 4.0]), np.zeros(2)
    assert smearing_factor(actual, predicted) == pytest.approx(2.5)  # mean of 1/1 and 4/1
    best = np.mean(qlike_losses(actual, predicted + math.log(2.5)))
    for other in (2.0, 2.4, 2.6, 3.0):
        assert np.mean(qlike_losses(actual, predicted + math.log(other))) > best


def tiny_returns_arrays():
    """Closes 100, 110, 99, 99, 108.9: log returns ln 1.1, ln 0.9, 0, ln 1.1; two training windows
    (ends 0, 1), none for validation, two test windows (ends 2, 3); target unscaled (mean 0, std 1)."""
    close = np.array([100.0, 110.0, 99.0, 99.0, 108.9])
    target = np.append(np.diff(np.log(close)), np.nan)
    arrays = {
        "close": close,
        "target": target.astype("float32"),
        "symbol": np.array(["A"] * 5),
        "date": pd.bdate_range("2020-01-01", periods=5).to_numpy().astype("int64"),
        "ends_train": np.array([0, 1]),
        "ends_val": np.array([], "int64"),
        "ends_test": np.array([2, 3]),
        "features": np.zeros((5, 1), "float32"),
    }
    meta = {"task": "forecast", "target": "return", "target_mean": 0.0, "target_std": 1.0, "horizon": 1, "lookback": 1}
    return arrays, meta


def test_mase_on_the_log_scale_and_out_of_sample_r2_by_hand():
    arrays, meta = tiny_returns_arrays()
    truth = return_truth(arrays, meta)
    up, down = math.log(1.1), math.log(0.9)
    # The random walk's in-sample MAE on log prices: the mean absolute training return.
    assert truth["naive_scale"] == pytest.approx((up - down) / 2)
    assert truth["benchmark"] == pytest.approx((up + down) / 2)  # the historical mean
    assert truth["up_share"] == pytest.approx(0.5)  # test returns 0 and ln 1.1
    got = forecast_metrics(
        truth["actual_return"],
        np.zeros(2),
        truth["last_close"],
        truth["actual_close"],
        truth["naive_scale"],
        truth["benchmark"],
    )
    assert got["mase"] == pytest.approx((up / 2) / ((up - down) / 2))  # test MAE of the zero forecast
    mean = (up + down) / 2
    assert got["r2_os"] == pytest.approx(1 - up**2 / (mean**2 + (up - mean) ** 2))
    assert got["theils_u"] == pytest.approx(1.0)


def test_historical_mean_and_always_up_baselines():
    arrays, meta = tiny_returns_arrays()
    arrays["ends_val"] = np.array([2])  # train + validation returns: ln 1.1, ln 0.9, 0
    arrays["ends_test"] = np.array([3])
    found = stock.baselines(arrays, meta, None)
    assert set(found) == {"random_walk", "historical_mean", "always_up", "ridge_ar"}
    assert found["historical_mean"] == pytest.approx([(math.log(1.1) + math.log(0.9)) / 3])
    assert found["always_up"] == pytest.approx([math.log(1.1)])  # the one up move
    assert found["random_walk"] == pytest.approx([0.0])


def test_return_scorer_reads_direction_against_the_up_share():
    arrays, meta = tiny_returns_arrays()
    scorer = stock.scorer(arrays, meta)
    assert isinstance(scorer, ReturnScorer)
    assert scorer.primary == "rmse" and not scorer.calibrates
    always_up = scorer.scores(np.full(2, 0.05))
    assert always_up["directional_accuracy"] == pytest.approx(scorer.context()["up_share"])
    assert scorer.scores(np.full(2, scorer.truth["benchmark"]))["r2_os"] == pytest.approx(0.0)


# ---- HAR, EWMA, GARCH ----------------------------------------------------------------------------


def test_har_regressors_by_hand():
    variance = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 10.0, 20.0])
    symbol = np.array(["A"] * 6 + ["B"] * 2)
    got = volatility.har_regressors(variance, symbol)
    np.testing.assert_allclose(got[:, 0], variance)  # daily
    assert got[5, 1] == pytest.approx((2 + 3 + 4 + 5 + 6) / 5)  # weekly: the last 5 days
    assert got[2, 1] == pytest.approx((1 + 2 + 3) / 3)  # fewer days at the start
    assert got[5, 2] == pytest.approx(3.5)  # monthly: all 6 days so far
    assert got[6].tolist() == [10.0, 10.0, 10.0]  # symbol B starts afresh
    assert got[7, 1] == pytest.approx(15.0)


def test_har_ols_recovers_coefficients_and_forecasts_by_hand():
    rng = np.random.default_rng(0)
    regressors = rng.uniform(0, 1, size=(30, 3))
    ahead = 1 + 0.5 * regressors[:, 0] + 0.3 * regressors[:, 1] + 0.1 * regressors[:, 2]
    ahead[4] = np.nan  # rows without a target are skipped
    coefficients = volatility.har_fit(regressors, ahead)
    np.testing.assert_allclose(coefficients, [1.0, 0.5, 0.3, 0.1], atol=1e-10)
    assert volatility.har_forecast(coefficients, np.array([[2.0, 3.0, 4.0]])) == pytest.approx([1 + 1 + 0.9 + 0.4])


def test_ewma_is_riskmetrics_by_hand():
    variance = [np.nan, 4.0, 2.0, 0.0, 9.0, 1.0]
    symbol = ["A", "A", "A", "A", "B", "B"]
    got = volatility.ewma_variance(variance, symbol)
    assert np.isnan(got[0])
    assert got[1] == 4.0  # started at the first variance
    assert got[2] == pytest.approx(0.94 * 4 + 0.06 * 2)  # 3.88
    assert got[3] == pytest.approx(0.94 * 3.88)  # 3.6472
    assert got[4] == 9.0 and got[5] == pytest.approx(0.94 * 9 + 0.06 * 1)  # B starts afresh


def test_volatility_baselines_have_one_finite_forecast_per_test_window():
    arrays, meta, _ = prepared(garch_prices(), target="volatility", horizon=5)
    found = volatility.baselines(arrays, meta)
    assert set(found) == {"har_rv", "har_log", "ewma", "garch"}
    for name, forecast in found.items():
        assert forecast.shape == (meta["sizes"]["test"],), name
        assert np.isfinite(forecast).all(), name
    # Log variances over 5 days of returns with a daily sd near 1%: around log(5e-4).
    assert np.median(found["garch"]) == pytest.approx(math.log(5 * 1e-4), abs=1.5)
    # The GARCH forecasts move with the clustered volatility; a constant would not.
    assert np.std(found["garch"]) > 0.05


def wilder_after(frame, cutoff: str, seed: int):
    """`frame` with every price after `cutoff` on a much wilder random path (the same before)."""
    later = frame.copy()
    after = (pd.to_datetime(later["date"]) > pd.Timestamp(cutoff)).to_numpy()
    shock = np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.05, after.sum())))
    for column in ("open", "high", "low", "close"):
        later.loc[after, column] = later.loc[after, column].to_numpy() * shock
    return later


def test_baselines_fit_on_train_and_validation_only():
    """Changing every price after the validation period changes no forecast made before it:
    neither GARCH's parameters nor HAR's coefficients saw the test period."""
    frame = garch_prices(seed=1)
    arrays, meta, df = prepared(frame, target="volatility", horizon=5)
    arrays2, meta2, _ = prepared(wilder_after(frame, meta["val_end"], seed=5), target="volatility", horizon=5)
    assert meta2["target_mean"] == meta["target_mean"] and meta2["variance_floor"] == meta["variance_floor"]
    np.testing.assert_array_equal(arrays2["ends_test"], arrays["ends_test"])
    dates = df["date"].to_numpy()
    known = dates[arrays["ends_test"]] <= np.datetime64(meta["val_end"])  # made before the test period
    assert known.any() and not known.all()
    first, second = volatility.baselines(arrays, meta), volatility.baselines(arrays2, meta2)
    for name in first:
        np.testing.assert_allclose(second[name][known], first[name][known], rtol=1e-6, err_msg=name)
        assert not np.allclose(second[name][~known], first[name][~known]), name


# ---- the volatility target ---------------------------------------------------------------------


def test_volatility_target_is_the_log_variance_of_the_next_days_only():
    frame = garch_prices(days=300)
    arrays, meta, df = prepared(frame, target="volatility", horizon=3)
    returns = np.diff(np.log(df["close"].to_numpy()))  # returns[i] is realised on row i + 1
    target = arrays["target"] * meta["target_std"] + meta["target_mean"]
    for t in np.concatenate([arrays["ends_train"][:5], arrays["ends_test"][-5:]]):
        # Days t+1 .. t+3, not day t: the features' window ends at day t.
        expected = math.log(np.sum(returns[t : t + 3] ** 2))
        assert target[t] == pytest.approx(expected, abs=1e-5)
    assert meta["target"] == "volatility" and meta["variance"] == "squared_returns"
    assert {"log_rv_daily", "log_rv_weekly", "log_rv_monthly"} <= set(meta["features"])


def test_volatility_features_never_see_the_target_days():
    frame = garch_prices(days=300, seed=3)
    arrays, meta, df = prepared(frame, target="volatility", horizon=5)
    before = stock.input_features(df, meta)  # the kind's and HAR's, with the prepared estimator and floor
    k = 250  # a day in the test period: every price from it on changes
    later = df.copy()
    later.loc[k:, ["open", "high", "low", "close"]] *= np.exp(np.linspace(0.1, 0.5, len(df) - k))[:, None]
    after = stock.input_features(later, meta)
    pd.testing.assert_frame_equal(after.iloc[:k], before.iloc[:k])  # no feature up to day k-1 moved
    assert not after.iloc[k:].equals(before.iloc[k:])
    # A target moves only when one of its days is day k or later (t + h >= k).
    cfg = dataset(lookback=10, splits={"validation": 0.2, "test": 0.2}, target="volatility", horizon=5)
    arrays2, meta2 = stock.prepare(later, cfg)
    y1 = arrays["target"] * meta["target_std"] + meta["target_mean"]
    y2 = arrays2["target"] * meta2["target_std"] + meta2["target_mean"]
    np.testing.assert_allclose(y2[: k - 5], y1[: k - 5], rtol=1e-6)
    assert y2[k - 5] != pytest.approx(y1[k - 5])
    # The scalers saw the training period only, so they did not move either.
    for key in ("feature_mean", "feature_scale", "target_mean", "target_std", "variance_floor"):
        assert meta2[key] == meta[key], key
    train = (df["date"] <= pd.Timestamp(meta["train_end"])).to_numpy()
    np.testing.assert_allclose(meta["feature_mean"], before[train].mean().to_numpy(), rtol=1e-9)


def test_every_volatility_window_ends_before_its_target_days():
    arrays, meta, df = prepared(garch_prices(days=300), target="volatility", horizon=5)
    dates = df["date"].to_numpy()
    train_end, val_end = np.datetime64(meta["train_end"]), np.datetime64(meta["val_end"])
    assert (dates[arrays["ends_train"] + 5] <= train_end).all()
    assert (dates[arrays["ends_val"] + 5] > train_end).all() and (dates[arrays["ends_val"] + 5] <= val_end).all()
    assert (dates[arrays["ends_test"] + 5] > val_end).all()


def test_range_estimators_by_hand_and_their_fallback():
    df = pd.DataFrame(
        {
            "symbol": ["A"] * 3,
            "close": [100.0, 110.0, 99.0],
            "open": [100.0, 105.0, 99.0],
            "high": [100.0, 121.0, 99.0],
            "low": [100.0, 100.0, 99.0],
            "volume": np.nan,
        }
    )
    parkinson, fell_back = volatility.daily_variance(df, "parkinson")
    assert fell_back == 2  # rows 0 and 2 have high == low
    assert np.isnan(parkinson[0])  # no return on the first day either
    assert parkinson[1] == pytest.approx(math.log(1.21) ** 2 / (4 * LN2))
    assert parkinson[2] == pytest.approx(math.log(0.9) ** 2)  # the squared return
    garman_klass, _ = volatility.daily_variance(df, "garman_klass")
    assert garman_klass[1] == pytest.approx(0.5 * math.log(1.21) ** 2 - (2 * LN2 - 1) * math.log(110 / 105) ** 2)


def test_a_range_estimator_on_flat_1950s_style_rows_falls_back_and_says_so():
    frame = garch_prices(days=300)
    flat = frame.index < 100  # open = high = low = close, as the S&P 500's 1950s rows
    for column in ("open", "high", "low"):
        frame.loc[flat, column] = frame.loc[flat, "close"]
    arrays, meta, df = prepared(frame, target="volatility", horizon=5, variance="parkinson")
    assert meta["variance_fallback_days"] == 100
    variance = arrays["daily_variance"]
    returns = np.diff(np.log(df["close"].to_numpy()))
    np.testing.assert_allclose(variance[1:100], returns[:99] ** 2)
    assert np.isfinite(arrays["target"][arrays["ends_train"]]).all()


# ---- the volatility scorer ------------------------------------------------------------------------


def test_volatility_scorer_scales_each_run_on_validation_and_tests_qlike():
    from seqbench.stages.evaluate import assemble

    arrays, meta, _ = prepared(garch_prices(), target="volatility", horizon=5)
    scorer = stock.scorer(arrays, meta)
    assert isinstance(scorer, volatility.VolatilityScorer)
    assert scorer.primary == "qlike" and scorer.calibrates
    actual_val = scorer.truth["validation_log_variance"]
    std, mean = meta["target_std"], meta["target_mean"]
    biased_low = (actual_val - 1.0 - mean) / std  # a forecast e times too low everywhere
    test = np.zeros(meta["sizes"]["test"])
    calibrated = scorer.calibrate(("lstm", 0), test, biased_low)
    assert scorer.scales[("lstm", 0)] == pytest.approx(math.e)
    np.testing.assert_allclose(calibrated, test + 1.0 / std)
    # The rest of evaluation: QLIKE decides; DM on squared log error is reported beside it.
    rng = np.random.default_rng(0)
    outputs = {(c, s): calibrated + rng.normal(0, 0.1, len(test)) for c in ("lstm", "gru") for s in (0, 1)}
    baselines = stock.baselines(arrays, meta, None)
    best = {"name": "garch", "metric": "qlike", "validation_scores": {}}
    cells = ["lstm", "gru"]
    result, predictions = assemble("vol", "stock", meta, scorer, outputs, baselines, cells, [0, 1], best, (0.01, True))
    head = result["comparisons"][0]
    assert head["metric"] == "qlike" and head["beside"]["loss_test"]["loss"] == "QLIKE"
    assert head["effect"]["block_length"] >= 1  # forecasts: resampled in blocks
    assert all("p_holm" in c["beside"]["squared_error_test"] for c in result["comparisons"])
    garch_qlike = result["models"]["garch"]["scores"]["qlike"]
    assert result["rope"]["width"] == pytest.approx(0.01 * garch_qlike)  # 1% of the best baseline's score
    assert set(result["models"]["garch"]["scores"]) == {"qlike", "mse_log", "mz_r2"}
    assert result["context"]["target"] == "volatility"
    assert {"actual_volatility", "garch_volatility", "lstm_log_variance"} <= set(predictions.columns)


# ---- the void rule --------------------------------------------------------------------------------


def run_metrics(best: float, untrained: float = 1.0) -> dict:
    return {"best_val_loss": best, "untrained_val_loss": untrained, "best_epoch": 0 if best >= untrained else 3}


def write_runs(root, learned: dict):
    """(cell, seed) -> run folder with a metrics.json; `learned[cell]`: which seeds beat untrained."""
    runs = {}
    for cell, seeds in learned.items():
        for seed, better in enumerate(seeds):
            folder = root / cell / f"seed{seed}"
            folder.mkdir(parents=True)
            (folder / "metrics.json").write_text(json.dumps(run_metrics(0.69 if better else 0.7, untrained=0.7)))
            runs[(cell, seed)] = folder
    return runs


def test_a_cell_that_never_learned_is_void_on_its_own(tmp_path):
    from seqbench.stages.evaluate import cells_that_did_not_learn, mark_void

    runs = write_runs(tmp_path, {"lstm": [False, True, False], "gru": [False, False, False]})
    found = cells_that_did_not_learn(runs, ["lstm", "gru"], [0, 1, 2])
    assert list(found) == ["gru"] and "did not learn" in found["gru"] and "3 runs" in found["gru"]
    comparisons = [
        {
            "a": "lstm",
            "b": "gru",
            "verdict": {"answer": "undecided", "winner": None, "reason": "r", "seeds_to_decide": 9},
        },
        {"a": "lstm", "b": "garch", "verdict": {"answer": "undecided", "winner": None, "text": "undecided"}},
        {"a": "gru", "b": "garch", "verdict": {"answer": "b_better", "winner": "garch", "text": "garch is better"}},
    ]
    mark_void(comparisons, found)
    assert comparisons[0]["void"] == found["gru"] and comparisons[2]["void"] == found["gru"]
    assert all(c["verdict"]["answer"] == "void" and c["verdict"]["winner"] is None for c in comparisons[::2])
    assert comparisons[0]["verdict"]["text"] == "void: gru did not learn"
    assert "reason" not in comparisons[0]["verdict"] and "seeds_to_decide" not in comparisons[0]["verdict"]
    assert "void" not in comparisons[1]  # the LSTM learned: its comparison with the baseline stands


def test_no_cell_is_void_when_one_of_its_seeds_learned(tmp_path):
    from seqbench.stages.evaluate import cells_that_did_not_learn

    runs = write_runs(tmp_path, {"lstm": [False, True], "gru": [True, False]})
    assert cells_that_did_not_learn(runs, ["lstm", "gru"], [0, 1]) == {}


def test_the_report_summary_names_the_void_comparisons(tmp_path):
    import yaml

    from report_data import stock_evaluation, text_evaluation, write_dataset
    from seqbench.stages.evaluate import mark_void
    from seqbench.stages.report import render_report

    rng = np.random.default_rng(0)
    stuck, predictions = stock_evaluation(rng)
    stuck["did_not_learn"] = {cell: f"did not learn: {cell} never beat its untrained model" for cell in stuck["cells"]}
    mark_void(stuck["comparisons"], stuck["did_not_learn"])
    write_dataset(tmp_path, "prices", stuck, predictions)
    write_dataset(tmp_path, "reviews", *text_evaluation(rng), columns=("text",), searched=False)
    params = {
        "datasets": {
            "prices": {"kind": "stock", "source": "prices.csv"},
            "reviews": {"kind": "text", "source": "reviews.csv", "labels": ["<b>great</b>", "other"]},
        }
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    html = render_report(tmp_path / "params.yaml").read_text(encoding="utf-8")
    summary = html[html.index('id="void-summary"') : html.index('<section id="prices"')]
    assert "Void comparisons" in summary and "prices</a>: lstm vs gru" in summary and "reviews" not in summary
    assert "void: lstm and gru did not learn" in html
    assert "test up days" in html  # directional accuracy beside the test period's up-day share


# ---- bad settings ---------------------------------------------------------------------------------


def test_a_target_other_than_return_or_volatility_is_a_clear_error(project):
    project.write("prices.csv", stock_frame(50))
    project.params({"d": {**STOCK, "target": "price"}})
    assert_clean_failure(project.run("ingest", "d"), "datasets.d.target", "'return' or 'volatility'")


def test_variance_without_a_volatility_target_is_a_clear_error(project):
    project.params({"d": {**STOCK, "variance": "parkinson"}})
    assert_clean_failure(project.run("datasets"), "variance: applies only to target: volatility")


def close_only(days: int) -> pd.DataFrame:
    return garch_prices(days)[["date", "close"]]


def ingest_validate(project, frame, **fields):
    project.write("prices.csv", frame)
    project.params({"d": {**STOCK, "lookback": 5, **fields}})
    for step in ("ingest", "validate"):
        result = project.run(step, "d")
        assert result.exit_code == 0, result.output


def test_volatility_on_a_short_close_only_file_names_the_horizon(project):
    ingest_validate(project, close_only(12), target="volatility", horizon=10)
    result = project.run("prepare", "d")
    assert_clean_failure(result, "datasets.d.horizon:", "at least 16 rows", "has 12")
    assert not project.exists("data/prepared/d")


def test_a_range_estimator_on_close_only_data_names_the_variance_key(project):
    ingest_validate(project, close_only(120), target="volatility", horizon=5, variance="garman_klass")
    result = project.run("prepare", "d")
    assert_clean_failure(result, "datasets.d.variance: garman_klass needs open, high, low", "variance: squared_returns")


def test_volatility_on_a_long_enough_close_only_file_prepares(project):
    ingest_validate(project, close_only(120), target="volatility", horizon=5)
    result = project.run("prepare", "d")
    assert result.exit_code == 0, result.output
    meta = json.loads((project.root / "data/prepared/d/meta.json").read_text())
    assert meta["target"] == "volatility" and meta["features"][0] == "log_return"
    assert "hl_range" not in meta["features"]  # close only: no range to use


# ---- end to end: train tiny runs, evaluate, predict ---------------------------------------------


def test_a_volatility_dataset_trains_evaluates_and_predicts(project):
    import yaml

    from helpers import TINY_TRAIN, fixed_search
    from seqbench.training.runs import train_run

    project.write("prices.csv", garch_prices(days=400))
    params = {
        "datasets": {"vol": {**STOCK, "lookback": 10, "target": "volatility", "horizon": 5}},
        "train": dict(TINY_TRAIN),
    }
    (project.root / "params.yaml").write_text(yaml.safe_dump(params))
    for step in ("ingest", "validate", "prepare"):
        assert project.run(step, "vol").exit_code == 0
    fixed_search(project, "vol")
    for cell in ("lstm", "gru"):
        for seed in (0, 1):
            train_run("vol", cell, seed, project.root / "params.yaml")
    result = project.run("evaluate", "vol")
    assert result.exit_code == 0, result.output
    detail = json.loads((project.root / "reports/eval/vol.json").read_text())
    assert detail["comparisons"][0]["metric"] == "qlike"
    assert detail["baselines"] == ["har_rv", "har_log", "ewma", "garch"]
    # Every model is calibrated alike: each RNN run and each baseline has its validation factor.
    runs = {"gru seed0", "gru seed1", "lstm seed0", "lstm seed1"}
    assert set(detail["context"]["variance_scale"]) == runs | set(detail["baselines"])
    assert detail["context"]["calibrated"] == "all"
    assert all(k > 0 for k in detail["context"]["variance_scale"].values())
    # The DVC metrics: QLIKE of each cell and of the best baseline, and each verdict's numbers.
    headline = json.loads((project.root / "reports/metrics/vol.json").read_text())
    best = detail["best_baseline"]["name"]
    assert set(headline) == {"lstm", "gru", best, "gru_minus_lstm", f"{best}_minus_lstm", f"{best}_minus_gru"}
    assert set(headline[best]) == {"qlike"} and set(headline["gru_minus_lstm"]) == {"qlike", "p_holm", "verdict"}
    # The report's volatility section (learning curves come from the training flow, not run here).
    curves = project.root / "reports/train/vol"
    curves.mkdir(parents=True)
    pd.DataFrame(
        [
            {"cell": c, "seed": 0, "epoch": 1, "train_loss": 1.0, "val_loss": 1.0, "seconds": 0.1}
            for c in ("lstm", "gru")
        ]
    ).to_csv(curves / "learning_curves.csv", index=False)
    page = project.root / "reports/index.html"  # --output: the default is relative to the working folder
    assert project.run("report", "--output", str(page)).exit_code == 0
    html = page.read_text(encoding="utf-8")
    assert "Forecast vs actual volatility" in html and "QLIKE (Patton 2011" in html
    assert "Diebold-Mariano (HLN) on squared error of log variance (the seed ensembles)" in html
    project.write("new.csv", garch_prices(days=60, seed=9))
    out_path = project.root / "out.csv"
    assert project.run("predict", "vol", "new.csv", "--output", str(out_path)).exit_code == 0
    out = pd.read_csv(out_path)
    assert {"predicted_log_variance", "predicted_volatility"} <= set(out.columns)
    assert (out["predicted_volatility"] > 0).all()


# ---- baselines on the validation split, and every model calibrated alike --------------------------


def sv_prices(days: int = 1500, seed: int = 0, phi: float = 0.98) -> pd.DataFrame:
    """Closes whose daily log variance is a persistent AR(1) (a stochastic-volatility model):
    h_t = mu + phi (h_t-1 - mu) + 0.2 eta_t, r_t = exp(h_t / 2) z_t, with exp(mu) = 1e-4."""
    rng = np.random.default_rng(seed)
    mu, h, log_variance = math.log(1e-4), math.log(1e-4), []
    for _ in range(days):
        h = mu + phi * (h - mu) + 0.2 * rng.standard_normal()
        log_variance.append(h)
    returns = np.exp(np.array(log_variance) / 2) * rng.standard_normal(days)
    frame = stock_frame(days)
    close = 100 * np.exp(np.cumsum(returns))
    frame["close"] = frame["open"] = frame["high"] = frame["low"] = close
    return frame


def test_return_baselines_and_scorer_on_validation():
    arrays, meta = tiny_returns_arrays()
    arrays["ends_val"] = np.array([3])  # training returns: ln 1.1, ln 0.9; validation: ln 1.1
    arrays["ends_test"] = np.array([], "int64")  # not needed on validation
    found = stock.baselines(arrays, meta, None, split="val")
    assert set(found) == {"random_walk", "historical_mean", "always_up", "ridge_ar"}
    assert all(len(v) == 1 for v in found.values())
    # Fit on the training returns alone: the validation return is not in the mean.
    assert found["historical_mean"] == pytest.approx([(math.log(1.1) + math.log(0.9)) / 2])
    assert found["always_up"] == pytest.approx([math.log(1.1)])
    scorer = stock.scorer(arrays, meta, split="val")
    assert scorer.truth["actual_return"] == pytest.approx([math.log(1.1)])  # the validation window's
    assert scorer.truth["benchmark"] == pytest.approx((math.log(1.1) + math.log(0.9)) / 2)
    assert scorer.truth["up_share"] == 1.0
    assert scorer.scores(np.zeros(1))["rmse"] == pytest.approx(math.log(1.1))
    assert isinstance(scorer, ReturnScorer) and scorer.primary == "rmse" and not scorer.calibrates


def test_volatility_baselines_on_validation_fit_on_the_training_period_only():
    """Changing every price after the training period changes no validation forecast made before
    it: no baseline fitted for the validation split saw a validation or test day."""
    frame = garch_prices(seed=2)
    arrays, meta, df = prepared(frame, target="volatility", horizon=5)
    arrays2, meta2, _ = prepared(wilder_after(frame, meta["train_end"], seed=6), target="volatility", horizon=5)
    assert meta2["target_mean"] == meta["target_mean"] and meta2["variance_floor"] == meta["variance_floor"]
    np.testing.assert_array_equal(arrays2["ends_val"], arrays["ends_val"])
    known = df["date"].to_numpy()[arrays["ends_val"]] <= np.datetime64(meta["train_end"])
    assert known.any() and not known.all()
    first = volatility.baselines(arrays, meta, "val")
    second = volatility.baselines(arrays2, meta2, "val")
    assert list(first) == ["har_rv", "har_log", "ewma", "garch"]
    for name in first:
        assert first[name].shape == (meta["sizes"]["val"],) and np.isfinite(first[name]).all(), name
        np.testing.assert_allclose(second[name][known], first[name][known], rtol=1e-6, err_msg=name)
        assert not np.allclose(second[name][~known], first[name][~known]), name
    # The test split's baselines are fit on training and validation: they do see the change.
    test_first, test_second = volatility.baselines(arrays, meta), volatility.baselines(arrays2, meta2)
    made_in_val = df["date"].to_numpy()[arrays["ends_test"]] <= np.datetime64(meta["val_end"])
    assert not np.allclose(test_second["har_rv"][made_in_val], test_first["har_rv"][made_in_val])


def test_the_validation_scorer_scores_the_validation_truth():
    arrays, meta, _ = prepared(garch_prices(), target="volatility", horizon=5)
    scorer = stock.scorer(arrays, meta, split="val")
    assert isinstance(scorer, volatility.VolatilityScorer)
    assert scorer.primary == "qlike" and scorer.calibrates
    actual = arrays["target"][arrays["ends_val"]].astype("float64") * meta["target_std"] + meta["target_mean"]
    np.testing.assert_allclose(scorer.truth["actual_log_variance"], actual)
    perfect = arrays["target"][arrays["ends_val"]].astype("float64")  # the validation targets themselves
    assert scorer.scores(perfect)["qlike"] == pytest.approx(0.0, abs=1e-9)
    assert stock.scorer(arrays, meta).scores(np.zeros(meta["sizes"]["test"])).keys() == scorer.scores(perfect).keys()
    assert len(scorer.predictions_table({"m": perfect})) == meta["sizes"]["val"]
    with pytest.raises(ValueError, match="split must be one of test, val, not 'train'"):
        stock.scorer(arrays, meta, split="train")
    with pytest.raises(ValueError, match="not 'train'"):
        stock.baselines(arrays, meta, None, split="train")


def test_a_baselines_level_factor_is_fitted_on_validation():
    arrays, meta, _ = prepared(garch_prices(), target="volatility", horizon=5)
    std, mean = meta["target_std"], meta["target_mean"]
    on_test = stock.baselines(arrays, meta, None)
    on_val = stock.baselines(arrays, meta, None, split="val")
    scorer = stock.scorer(arrays, meta)
    calibrated = scorer.calibrate("har_log", on_test["har_log"], on_val["har_log"])
    factor = smearing_factor(scorer.truth["validation_log_variance"], on_val["har_log"] * std + mean)
    assert scorer.scales["har_log"] == pytest.approx(factor) and factor != pytest.approx(1.0, abs=1e-3)
    np.testing.assert_allclose(calibrated, on_test["har_log"] + math.log(factor) / std)
    # The factor is the one that minimises the baseline's validation QLIKE ...
    val_scorer = stock.scorer(arrays, meta, split="val")
    best = val_scorer.scores(val_scorer.calibrate("har_log", on_val["har_log"], on_val["har_log"]))["qlike"]
    for other in (0.8, 0.95, 1.05, 1.25):
        worse = on_val["har_log"] + math.log(other * factor) / std
        assert val_scorer.scores(worse)["qlike"] > best
    # ... and the test split plays no part in it.
    moved = {**arrays, "target": arrays["target"].copy()}
    moved["target"][arrays["ends_test"]] += 1.0
    other_scorer = stock.scorer(moved, meta)
    other_scorer.calibrate("har_log", on_test["har_log"], on_val["har_log"])
    assert other_scorer.scales["har_log"] == scorer.scales["har_log"]
    # Runs and baselines alike: the context names each model's factor and says all were calibrated.
    assert scorer.context()["calibrated"] == "baselines"
    scorer.calibrate(("lstm", 0), on_test["garch"], on_val["garch"])
    context = scorer.context()
    assert context["calibrated"] == "all"
    assert set(context["variance_scale"]) == {"har_log", "lstm seed0"}
    assert stock.scorer(arrays, meta).context()["calibrated"] == "none"


def test_log_har_beats_a_constant_on_a_persistent_log_variance():
    """On prices whose log variance is a persistent AR(1), log-HAR's forecasts track the log
    realised variance (better squared error of the log than the training mean's, a Mincer-Zarnowitz
    R^2 well above 0) and, calibrated on validation like the RNNs, have a lower QLIKE."""
    arrays, meta, _ = prepared(sv_prices(), target="volatility", horizon=5)
    std = meta["target_std"]
    on_test = stock.baselines(arrays, meta, None)
    on_val = stock.baselines(arrays, meta, None, split="val")
    constant = np.zeros(meta["sizes"]["test"])  # the training mean of the log realised variance
    scorer = stock.scorer(arrays, meta)
    raw_har, raw_constant = scorer.scores(on_test["har_log"]), scorer.scores(constant)
    assert raw_har["mse_log"] < 0.9 * raw_constant["mse_log"]
    assert raw_har["mz_r2"] > 0.1
    har = scorer.scores(scorer.calibrate("har_log", on_test["har_log"], on_val["har_log"]))
    flat = scorer.scores(scorer.calibrate("constant", constant, np.zeros(meta["sizes"]["val"])))
    assert har["qlike"] < flat["qlike"]
    # Its forecast is an estimate of E[log RV]: below log E[RV], so its factor exceeds 1.
    assert scorer.scales["har_log"] > 1.0
    assert np.isfinite(on_test["har_log"]).all() and std > 0
