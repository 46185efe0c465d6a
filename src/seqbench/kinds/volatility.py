"""The stock kind's `target: volatility`: the log of the realised variance over the next `horizon`
days, the daily variance it sums (squared returns or a range estimator: `variance:`), the HAR
features it adds, its baselines (HAR-RV, log-HAR, EWMA, GARCH), what it is scored against and its
scorer.

stock.py, the kind's module, chooses between this target and the return's (returns.py, which
also holds what the two share).
"""

from __future__ import annotations

from seqbench.kinds.base import check_split
from seqbench.kinds.returns import ForecastScorer, fit_ends, log_returns, scored_ends, unscaled_target

DESCRIPTION = "realised variance"  # what the target is, in messages
# The report's figures of a volatility forecast, with their options (stages/report/sections.py).
REPORT_FIGURES = {
    "forecast": {"quantity": "volatility"},
    "residuals": {"quantity": "log_variance", "label": "log variance"},
}
# Corsi's (2009) HAR scales: the mean daily variance over the last day, week and month.
HAR_SCALES = {"daily": 1, "weekly": 5, "monthly": 22}
# A day's variance can be 0 (an unchanged close, a day with high == low), and its log -inf. So
# variances are floored at this fraction of the training period's median day.
FLOOR_FRACTION = 1e-4
RANGE_COLUMNS = {"parkinson": ("high", "low"), "garman_klass": ("open", "high", "low")}
RISKMETRICS_LAMBDA = 0.94  # J.P. Morgan RiskMetrics (1996), daily data


# ---- preparation: the daily variance, the HAR features, the target -----------------------------


def har_features(features, df, variance: str, floor: float):
    """`features` (the kind's raw features of `df`, stock.raw_features) plus the log of the mean
    daily variance (`variance`: the estimator) over the last 1, 5 and 22 days
    (log_rv_daily/weekly/monthly, floored at `floor`): the HAR model's regressors, so the RNN
    starts from what HAR knows."""
    import numpy as np

    daily, _ = daily_variance(df, variance)
    for name, days in HAR_SCALES.items():
        mean = trailing_mean(daily, df["symbol"], days)
        features[f"log_rv_{name}"] = np.log(np.maximum(mean, floor))
    return features


def trailing_mean(values, symbol, days: int):
    """Mean of the last `days` values up to and including each row, within the symbol (fewer at
    a symbol's start; NaNs skipped)."""
    return values.groupby(symbol, sort=False).transform(lambda s: s.rolling(days, min_periods=1).mean())


def daily_variance(df, estimator: str = "squared_returns"):
    """(each day's variance estimate, the days where a range estimator fell back to r_t^2).

    squared_returns: r_t^2 with r_t = log(close_t / close_t-1), NaN on a symbol's first day.
    parkinson (1980): log(high / low)^2 / (4 log 2).
    garman_klass (1980): log(high / low)^2 / 2 - (2 log 2 - 1) log(close / open)^2.
    The range estimators miss the overnight move. A day without a real range (high == low, or a
    price missing: the S&P 500 before 1962 has open = high = low = close) falls back to r_t^2, so
    the series stays daily and unbroken; the count is returned so that meta.json can say.
    """
    import numpy as np

    from seqbench.errors import ConfigError

    squared = log_returns(df) ** 2
    if estimator == "squared_returns":
        return squared, 0
    needed = RANGE_COLUMNS[estimator]
    missing = [c for c in needed if df[c].isna().all()]
    if missing:
        raise ConfigError(
            f"variance: {estimator} needs {', '.join(needed)} prices besides close, and the data "
            f"has no {', '.join(missing)}; use variance: squared_returns"
        )
    high_low = np.log(df["high"] / df["low"])
    if estimator == "parkinson":
        ranged = high_low**2 / (4 * np.log(2))
    else:
        ranged = 0.5 * high_low**2 - (2 * np.log(2) - 1) * np.log(df["close"] / df["open"]) ** 2
    real = (df["high"] > df["low"]) & ranged.notna()
    return ranged.where(real, squared), int((~real).sum())


def volatility_target(variance, symbol, horizon: int, floor: float):
    """log of the variance summed over days t+1 .. t+h within the symbol (floored at h * floor);
    NaN where fewer than h days follow. Day t is not in it: the features end at day t."""
    import numpy as np

    ahead = variance.groupby(symbol, sort=False).transform(
        lambda s: s.rolling(horizon, min_periods=horizon).sum().shift(-horizon)
    )
    return np.log(np.maximum(ahead, horizon * floor))


def variance_floor(variance, in_train) -> float:
    """FLOOR_FRACTION of the median positive daily variance of the training period."""
    from seqbench.errors import SeqbenchError

    positive = variance[in_train & (variance > 0).to_numpy()]
    if positive.empty:
        raise SeqbenchError("stock: no price moves in the training period; a volatility target needs some")
    return float(FLOOR_FRACTION * positive.median())


def features_and_target(df, cfg, in_train, features):
    """(raw features, unscaled target, extra arrays, extra meta): the kind's raw features
    (stock.raw_features) plus HAR's, and the log realised variance over the horizon."""
    variance, fallback = daily_variance(df, cfg.variance)
    # The floor comes from the training period only, like every other fitted number.
    floor = variance_floor(variance, in_train)
    features = har_features(features, df, cfg.variance, floor)
    y = volatility_target(variance, df["symbol"], cfg.horizon, floor).to_numpy()
    meta = {"variance": cfg.variance, "variance_floor": floor, "variance_fallback_days": fallback}
    return features, y, {"daily_variance": variance.to_numpy("float64")}, meta


def input_features(features, df, meta: dict):
    """The raw features of a table to predict for: the kind's plus HAR's, with the prepared
    dataset's estimator and floor."""
    return har_features(features, df, meta["variance"], meta["variance_floor"])


# ---- prediction on new data -------------------------------------------------------------------


def format_predictions(rows, predicted, meta: dict):
    """The predicted log variance over the horizon and its square root (exp(log variance / 2):
    a median-type forecast, not scaled up to the mean)."""
    import numpy as np

    return rows.assign(
        horizon_days=meta["horizon"], predicted_log_variance=predicted, predicted_volatility=np.exp(predicted / 2)
    )


# ---- baselines (evaluate stage) ----------------------------------------------------------------


def baselines(arrays: dict, meta: dict, split: str = "test") -> dict:
    """Log variance forecasts (of the sum over the horizon) at the ends of `split`'s windows.

    A baseline forecasting the test split is fit on the training and validation periods; one
    forecasting the validation split ("val") on the training period alone (returns.fit_ends),
    so that the best baseline can be chosen on validation without having seen it.
    har_rv: Corsi's (2009) HAR-RV, OLS of the next h days' mean daily variance on the mean of the
    last 1, 5 and 22 days, in levels (as Corsi).
    har_log: log-HAR, the same regression in logs: OLS of the log of the next h days' mean daily
    variance on the logs of the three means (floored like the target), the scale the RNNs fit
    and the HAR features they see. It estimates E[log RV], below log E[RV], so like the RNNs it
    needs the scorer's level factor (VolatilityScorer.calibrate), which every model gets.
    ewma: RiskMetrics, sigma2_t = 0.94 sigma2_t-1 + 0.06 v_t, times h (no parameter is fit).
    garch: GARCH(1,1) (the `arch` package), fit on the returns up to the end of the fitting
    period, its parameters then fixed while it filters the scored period.
    HAR and EWMA use the dataset's daily variance (squared returns unless `variance:` names a
    range estimator); GARCH models close-to-close returns whatever the target's estimator.
    """
    import numpy as np

    horizon, floor = meta["horizon"], meta["variance_floor"]
    variance, symbol = arrays["daily_variance"], arrays["symbol"]
    scored, fit = scored_ends(arrays, split), fit_ends(arrays, split)
    regressors = har_regressors(variance, symbol)
    log_regressors = np.log(np.maximum(regressors, floor))  # NaN stays NaN (a symbol's first row)
    log_ahead = unscaled_target(arrays, meta, fit) - np.log(horizon)  # log mean daily variance to come
    coefficients = har_fit(regressors[fit], np.exp(log_ahead))
    log_coefficients = har_fit(log_regressors[fit], log_ahead)
    found = {
        "har_rv": horizon * har_forecast(coefficients, regressors[scored]),
        "har_log": horizon * np.exp(har_forecast(log_coefficients, log_regressors[scored])),
        "ewma": horizon * ewma_variance(variance, symbol)[scored],
        "garch": garch_variance(arrays, meta, split),
    }
    # A variance forecast at or below zero (HAR is linear) becomes the floor, like the target.
    return {name: np.log(np.maximum(v, horizon * floor)) for name, v in found.items()}


def har_regressors(variance, symbol):
    """[rows, 3]: the mean daily variance over the last 1, 5 and 22 days, within the symbol."""
    import numpy as np
    import pandas as pd

    values, symbols = pd.Series(np.asarray(variance, "float64")), pd.Series(np.asarray(symbol))
    return np.column_stack([trailing_mean(values, symbols, days).to_numpy() for days in HAR_SCALES.values()])


def har_fit(regressors, ahead):
    """OLS coefficients (intercept, daily, weekly, monthly) of `ahead` on the regressors, over
    the rows where both are finite."""
    import numpy as np

    ok = np.isfinite(regressors).all(axis=1) & np.isfinite(ahead)
    design = np.column_stack([np.ones(ok.sum()), regressors[ok]])
    return np.linalg.lstsq(design, ahead[ok], rcond=None)[0]


def har_forecast(coefficients, regressors):
    return coefficients[0] + regressors @ coefficients[1:]


def ewma_variance(variance, symbol, lam: float = RISKMETRICS_LAMBDA):
    """RiskMetrics: s_t = lam * s_t-1 + (1 - lam) * v_t within each symbol, started at the symbol's
    first variance; s_t is the forecast for day t+1 made at day t. NaN before the first value;
    a missing v_t carries s_t-1 forward."""
    import numpy as np

    variance, symbol = np.asarray(variance, "float64"), np.asarray(symbol)
    out = np.full(len(variance), np.nan)
    for name in dict.fromkeys(symbol):  # each symbol's rows, in order
        rows = np.flatnonzero(symbol == name)
        level = np.nan
        for row in rows:
            v = variance[row]
            if np.isfinite(v):
                level = v if np.isnan(level) else lam * level + (1 - lam) * v
            out[row] = level
    return out


GARCH_SCALE = 100.0  # returns in percent: the optimiser's tolerances suit numbers near 1


def garch_variance(arrays: dict, meta: dict, split: str = "test"):
    """GARCH(1,1) forecasts of the variance summed over the next h days at each window end of
    `split`, one model per symbol: zero mean (the target sums squared returns, not deviations),
    normal errors, fit by `arch` on the returns up to the end of the validation period for the
    test split, of the training period for the validation split (`last_obs`), then forecast from
    every origin of the split with those parameters fixed."""
    import warnings

    import numpy as np
    from arch import arch_model

    close, symbol, horizon = arrays["close"], arrays["symbol"], meta["horizon"]
    test = scored_ends(arrays, split)
    last_fit_day = meta["val_end"] if check_split(split) == "test" else meta["train_end"]
    fit_end = np.datetime64(last_fit_day, "ns").astype("int64")
    out = np.full(len(test), np.nan)
    for name in dict.fromkeys(symbol[test]):
        rows = np.flatnonzero(symbol == name)  # contiguous and chronological (prepare sorts)
        returns = GARCH_SCALE * np.diff(np.log(close[rows]))  # returns[i] is realised on rows[i + 1]
        fitted_on = int(np.sum(arrays["date"][rows[1:]] <= fit_end))
        mine = np.flatnonzero(symbol[test] == name)
        origins = test[mine] - rows[0] - 1  # the last return known at a window's end
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter; the fit is used as found
            model = arch_model(returns, mean="Zero", vol="GARCH", p=1, q=1, dist="normal", rescale=False)
            fit = model.fit(last_obs=fitted_on, disp="off")
            forecast = fit.forecast(horizon=horizon, start=int(origins.min()), reindex=False)
        summed = forecast.variance.to_numpy().sum(axis=1)  # row k: origin origins.min() + k
        out[mine] = summed[origins - origins.min()] / GARCH_SCALE**2
    return out


# ---- what evaluation scores against --------------------------------------------------------------


def volatility_truth(arrays: dict, meta: dict, split: str = "test") -> dict:
    """The log realised variance (summed over the horizon) of `split`'s windows ("test", or
    "val"), and the validation windows' (which scale a log-variance forecast into a variance
    forecast, whatever split is scored)."""
    scored, horizon = scored_ends(arrays, split), meta["horizon"]
    return {
        "actual_log_variance": unscaled_target(arrays, meta, scored),
        "validation_log_variance": unscaled_target(arrays, meta, arrays["ends_val"]),
        "date": arrays["date"][scored + horizon].astype("datetime64[ns]"),
        "symbol": arrays["symbol"][scored],
    }


# ---- scoring (evaluate stage) ------------------------------------------------------------------


class VolatilityScorer(ForecastScorer):
    """Scores scaled forecasts of the log variance, and pairs them with Diebold-Mariano on QLIKE
    (the verdict's metric) and, beside it, on the squared error of the log variance; both with
    h - 1 lags (an h-day target's errors overlap)."""

    # The verdict's metric. A volatility forecast's rests on QLIKE: unlike squared error of the log,
    # it ranks variance forecasts correctly even though realised variance is a noisy proxy (Patton 2011).
    primary = "qlike"
    loss = "QLIKE"  # the per-forecast loss (Diebold-Mariano's)
    # An RNN (and log-HAR) forecasts E[log RV]; scoring it as a variance needs a scale (see
    # calibrate). Every model gets one, baselines included, so that none is favoured.
    calibrates = True

    def __init__(self, arrays: dict, meta: dict, split: str = "test"):
        super().__init__(meta, volatility_truth(arrays, meta, split))
        # model -> the factor calibrate() multiplied its variance forecasts by; a model is a
        # (cell, seed) tuple for an RNN run, a name (str) for a baseline.
        self.scales: dict = {}

    def calibrate(self, run, test_output, val_output):
        """A model's forecasts of log variance as log *variance forecasts*: plus log k, with
        k = mean(RV / exp(forecast)) over the validation windows of its validation forecasts
        `val_output` (Duan's smearing estimate, and the constant factor that minimises the
        model's validation QLIKE). Without it a forecast of E[log RV] sits below log E[RV] and
        QLIKE punishes it for that, not for its timing.

        Every model is calibrated alike: `run` is a (cell, seed) tuple for an RNN run, or a
        baseline's name, whose `val_output` is its forecast of the validation split from its fit
        on the training split (`baselines(..., split="val")`). A level forecast (HAR-RV, EWMA,
        GARCH) that is already unbiased gets a factor near 1; log-HAR, like the RNNs, needs it.
        The scored split plays no part in the factor. (On a scorer of the validation split,
        `calibrate(name, val_output, val_output)` gives the validation forecasts with their own
        factor: how the best baseline is chosen on the scale the test split will see.)"""
        import numpy as np

        from seqbench.metrics import smearing_factor

        factor = smearing_factor(self.truth["validation_log_variance"], self.unscale(val_output))
        self.scales[run] = factor
        return test_output + np.log(factor) / self.meta["target_std"]

    def scores(self, output) -> dict:
        from seqbench.metrics import volatility_metrics

        return volatility_metrics(self.truth["actual_log_variance"], self.unscale(output))

    def primary_items(self, output):
        """[n, 1]: each forecast's QLIKE; the metric is their mean."""
        from seqbench.metrics import qlike_losses

        return qlike_losses(self.truth["actual_log_variance"], self.unscale(output))[:, None]

    def primary_from_means(self, means):
        return means[..., 0]

    def extra_tests(self, output_a, output_b) -> dict:
        """DM on the squared error of the log variance, beside the verdict's QLIKE."""
        from seqbench.stats import diebold_mariano

        actual = self.truth["actual_log_variance"]
        test = diebold_mariano(self.unscale(output_a) - actual, self.unscale(output_b) - actual, self.meta["horizon"])
        return {"squared_error_test": {**test, "loss": "squared error of log variance"}}

    def context(self) -> dict:
        """What the report reads the scores against: among it each calibrated model's level factor
        (`variance_scale`: "lstm seed0" for an RNN run, the baseline's name for a baseline) and
        which models were calibrated (`calibrated`: "all" when RNN runs and baselines alike, as
        evaluation does; "rnn_runs" or "baselines" when only those were; "none")."""
        runs = [model for model in self.scales if isinstance(model, tuple)]
        named = [model for model in self.scales if not isinstance(model, tuple)]
        calibrated = {(True, True): "all", (True, False): "rnn_runs", (False, True): "baselines"}
        return {
            "target": "volatility",
            "horizon": self.meta["horizon"],
            "variance": self.meta.get("variance"),
            "variance_scale": {model_label(model): k for model, k in self.scales.items()},
            "calibrated": calibrated.get((bool(runs), bool(named)), "none"),
        }

    def predictions_table(self, outputs: dict):
        import numpy as np

        t = self.truth
        # Volatility over the horizon: the square root of the variance summed over it.
        table = self.table(
            actual_log_variance=t["actual_log_variance"], actual_volatility=np.exp(t["actual_log_variance"] / 2)
        )
        for model, output in outputs.items():
            table[f"{model}_log_variance"] = self.unscale(output)
            table[f"{model}_volatility"] = np.exp(table[f"{model}_log_variance"] / 2)
        return table


def model_label(model) -> str:
    """A model as the report names it: "lstm seed0" for an RNN run (cell, seed), a baseline's name."""
    if isinstance(model, tuple):
        cell, seed = model
        return f"{cell} seed{seed}"
    return str(model)


def scorer(arrays: dict, meta: dict, split: str = "test") -> VolatilityScorer:
    """The scorer of `split`'s forecasts ("test", or "val": the same metrics against the
    validation split's log realised variance)."""
    return VolatilityScorer(arrays, meta, split)
