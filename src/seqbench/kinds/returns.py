"""The stock kind's `target: return`: the log return over the next `horizon` days, its baselines
(random walk, historical mean, always up, ridge AR), what it is scored against and its scorer.

Its first section holds what the stock targets share (the daily log return, the unscaled target,
the windows baselines are fit on, the scorer's common part): volatility.py imports it from here,
and stock.py, the kind's module, chooses between the two targets (`stock.target_of`).
"""

from __future__ import annotations

from seqbench.kinds.base import check_split

# ---- what the stock targets share -----------------------------------------------------------------


def log_returns(df):
    """log(close_t / close_t-1) within the symbol; NaN on each symbol's first row."""
    import numpy as np

    return np.log(df["close"]) - np.log(df.groupby("symbol", sort=False)["close"].shift())


def unscaled_target(arrays: dict, meta: dict, ends):
    return arrays["target"][ends].astype("float64") * meta["target_std"] + meta["target_mean"]


def fit_ends(arrays: dict, split: str = "test"):
    """Window ends a baseline forecasting `split` is fit on: the training and validation periods'
    for the test split, the training period's alone for the validation split (so a baseline's
    validation forecasts never saw validation or test targets)."""
    import numpy as np

    if check_split(split) == "val":
        return np.asarray(arrays["ends_train"])
    return np.concatenate([arrays["ends_train"], arrays.get("ends_val", np.zeros(0, "int64"))])


def scored_ends(arrays: dict, split: str = "test"):
    """Window ends of the split scored: the test split's, or the validation split's."""
    return arrays[f"ends_{check_split(split)}"]


class ForecastScorer:
    """What the scorers of the stock targets share: the scored split's truth, the model's output in
    target units, and no curves or classes. A target's scorer (ReturnScorer, VolatilityScorer)
    adds its metrics and tests (kinds.base.Scorer says what a scorer does)."""

    primary: str
    calibrates = False
    serial = True  # consecutive forecasts are dependent: resampled in blocks

    def __init__(self, meta: dict, truth: dict):
        self.meta = meta
        self.truth = truth  # what the scored split's forecasts are scored against

    def unscale(self, output):
        """The model's output in target units: a log return, or a log variance."""
        return output * self.meta["target_std"] + self.meta["target_mean"]

    def calibrate(self, run, test_output, val_output):
        return test_output

    def curves(self, output) -> dict:
        return {}

    def table(self, **actual):
        """The predictions table's first columns: each scored window's symbol and date, then `actual`."""
        import pandas as pd

        return pd.DataFrame({"symbol": self.truth["symbol"], "date": self.truth["date"], **actual})

    def confusion_tables(self, predictions, models: list[str]) -> dict:
        return {}  # forecasts have no classes


# ---- the target -----------------------------------------------------------------------------------

DESCRIPTION = "log return"  # what the target is, in messages
# The report's figures of a return forecast, with their options (stages/report/sections.py).
REPORT_FIGURES = {"forecast": {"quantity": "close"}, "residuals": {"quantity": "return", "label": "log return"}}


def return_target(df, horizon: int):
    """log(close_{t+h} / close_t) within the symbol; NaN for the last h rows of each symbol."""
    import numpy as np

    log_close = np.log(df["close"])
    return log_close.groupby(df["symbol"], sort=False).shift(-horizon) - log_close


def features_and_target(df, cfg, in_train, features):
    """(raw features, unscaled target, extra arrays, extra meta): the kind's raw features as they
    are (stock.raw_features), and the log return over the horizon."""
    return features, return_target(df, cfg.horizon).to_numpy(), {}, {}


def input_features(features, df, meta: dict):
    """The raw features of a table to predict for: the kind's, as they are."""
    return features


# ---- prediction on new data -------------------------------------------------------------------


def format_predictions(rows, predicted, meta: dict):
    """The predicted log return over the horizon and the close it implies."""
    import numpy as np

    return rows.assign(
        horizon_days=meta["horizon"],
        predicted_log_return=predicted,
        predicted_close=rows["close"] * np.exp(predicted),
    )


# ---- baselines (evaluate stage) ----------------------------------------------------------------


def baselines(arrays: dict, meta: dict, split: str = "test") -> dict:
    """Log-return forecasts over the windows of `split` ("test", or "val": see fit_ends).

    The periods a baseline is fit on (fit_ends): the training and validation periods for the
    test split, the training period alone for the validation split.
    random_walk: tomorrow's close is today's, a zero log return.
    historical_mean: the mean h-day log return of those periods.
    always_up: the mean of the up moves of those periods, every day: it always names "up", so
    its directional accuracy is the scored period's up-day share.
    ridge_ar: a ridge regression on the same lookback window of features the RNNs see, its
    penalty chosen by leave-one-out on those periods.
    """
    import numpy as np

    history = unscaled_target(arrays, meta, fit_ends(arrays, split))
    up = history[history > 0]
    n = len(scored_ends(arrays, split))
    return {
        "random_walk": np.zeros(n),
        "historical_mean": np.full(n, history.mean()),
        "always_up": np.full(n, up.mean() if up.size else 1e-6),
        "ridge_ar": ridge_ar(arrays, meta, split),
    }


def ridge_ar(arrays: dict, meta: dict, split: str = "test"):
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view
    from sklearn.linear_model import RidgeCV

    lookback = meta["lookback"]
    # windows[i] holds rows i .. i+lookback-1, so the window ending at row e is windows[e-lookback+1].
    windows = sliding_window_view(arrays["features"], lookback, axis=0)

    def flat(ends):
        return windows[ends - lookback + 1].reshape(len(ends), -1)

    fit = fit_ends(arrays, split)
    ridge = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(flat(fit), arrays["target"][fit])
    return ridge.predict(flat(scored_ends(arrays, split))) * meta["target_std"] + meta["target_mean"]


# ---- what evaluation scores against --------------------------------------------------------------


def return_truth(arrays: dict, meta: dict, split: str = "test") -> dict:
    """The returns and closes of `split` ("test", or "val"), and three numbers read against
    them: MASE's scale (the random walk's mean absolute h-day log-price change over the training
    windows: the MAE of forecasting log close_t+h by log close_t), the historical mean return of
    the periods before the scored one (training and validation for the test split, training for
    the validation split: the benchmark of Campbell and Thompson's out-of-sample R^2) and the
    scored period's share of up moves (what "always up" scores in direction)."""
    import numpy as np

    horizon = meta["horizon"]
    close = arrays["close"]
    scored, train = scored_ends(arrays, split), arrays["ends_train"]
    actual = unscaled_target(arrays, meta, scored)
    return {
        "actual_return": actual,
        "last_close": close[scored],
        "actual_close": close[scored + horizon],
        "date": arrays["date"][scored + horizon].astype("datetime64[ns]"),
        "symbol": arrays["symbol"][scored],
        "naive_scale": float(np.mean(np.abs(np.log(close[train + horizon]) - np.log(close[train])))),
        "benchmark": float(unscaled_target(arrays, meta, fit_ends(arrays, split)).mean()),
        "up_share": float(np.mean(actual > 0)),
    }


# ---- scoring (evaluate stage) ------------------------------------------------------------------


class ReturnScorer(ForecastScorer):
    """Scores scaled forecasts of the log return as log returns and prices; the verdict's metric
    is RMSE, built on squared errors."""

    primary = "rmse"  # the verdict's metric
    loss = "squared error"  # the per-forecast loss RMSE is built on (Diebold-Mariano's)

    def __init__(self, arrays: dict, meta: dict, split: str = "test"):
        super().__init__(meta, return_truth(arrays, meta, split))

    def scores(self, output) -> dict:
        from seqbench.metrics import forecast_metrics

        t = self.truth
        return forecast_metrics(
            t["actual_return"],
            self.unscale(output),
            t["last_close"],
            t["actual_close"],
            t["naive_scale"],
            t["benchmark"],
        )

    def primary_items(self, output):
        """[n, 1]: each forecast's squared error; RMSE is the square root of their mean."""
        error = self.unscale(output) - self.truth["actual_return"]
        return (error**2)[:, None]

    def primary_from_means(self, means):
        import numpy as np

        return np.sqrt(means[..., 0])

    def extra_tests(self, output_a, output_b) -> dict:
        return {}

    def context(self) -> dict:
        """What the report reads the scores against."""
        return {"target": "return", "horizon": self.meta["horizon"], "up_share": self.truth["up_share"]}

    def predictions_table(self, outputs: dict):
        import numpy as np

        t = self.truth
        table = self.table(actual_close=t["actual_close"], actual_return=t["actual_return"])
        for model, output in outputs.items():
            table[f"{model}_return"] = self.unscale(output)
            table[f"{model}_close"] = t["last_close"] * np.exp(table[f"{model}_return"])
        return table


def scorer(arrays: dict, meta: dict, split: str = "test") -> ReturnScorer:
    """The scorer of `split`'s forecasts ("test", or "val": the same metrics against the
    validation split's returns)."""
    return ReturnScorer(arrays, meta, split)
