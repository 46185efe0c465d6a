"""What every kind of data shares: column mapping, type coercion, the Check record, and the
splits and flat storage of variable-length sequences that preparation uses.

Kinds import from here, never from the stage modules (prepare.py imports the kinds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from seqbench.errors import SchemaError

# A column that fails to parse in more than this fraction of its non-empty cells is taken as a
# wrong mapping or wrong format (an error), not as a few bad rows (quarantine).
MAX_UNPARSEABLE_FRACTION = 0.5

FLOAT_MAX = 1.7976931348623157e308  # "between -FLOAT_MAX and FLOAT_MAX" means finite


@dataclass(frozen=True)
class Check:
    """One named expectation.

    level "row": failing rows are quarantined, with `name` as the reason.
    level "table": a failure stops the validate stage.
    """

    name: str
    level: Literal["row", "table"]
    expectation: object  # a great_expectations Expectation


# The splits evaluation scores: "test" (what the verdicts are about) and "val" (where the best
# baseline is chosen, so that the test split only scores).
SCORED_SPLITS = ("test", "val")


def check_split(split: str) -> str:
    """`split` if evaluation scores it (SCORED_SPLITS), else a ValueError naming it."""
    if split not in SCORED_SPLITS:
        raise ValueError(f"split must be one of {', '.join(SCORED_SPLITS)}, not {split!r}")
    return split


class Scorer(Protocol):
    """What evaluation asks of the scorer a kind gives it (`kind.scorer(arrays, meta, split)`):
    one split's scores, tests and tables. `split` is "test" (the default: the verdicts) or "val"
    (the same metrics and primary, against the validation split's truth: where the best baseline
    is chosen). An output is what a model's predict_step gives for that split (or a baseline's
    equivalent, `kind.baselines(..., split=split)`): forecasts [N] or class probabilities [N, C].
    """

    primary: str  # the metric the verdict decides on
    # Whether every model's outputs go through calibrate(): each RNN run's and each baseline's
    # alike (evaluation calls it for both, or the scorer says False and none is adjusted).
    calibrates: bool

    def calibrate(self, run, test_output, val_output):
        """A model's outputs on the scored split adjusted with the help of its outputs on the
        validation split (fitted there only). `run` names the model: a (cell, seed) tuple for an
        RNN run, a baseline's name (a str) for a baseline; for a baseline, `val_output` is
        `kind.baselines(..., split="val")[name]`, the baseline fitted on the training split."""

    def scores(self, output) -> dict:
        """Metric name -> value (floats, or None where undefined)."""

    serial: bool  # whether outputs are a time series (the bootstrap then resamples blocks)
    loss: str | None  # the per-example loss the primary metric is built on, if it is one

    def primary_items(self, output):
        """[N, k] per-example statistics whose means give the primary metric (primary_from_means):
        the verdict's bootstrap resamples these."""

    def primary_from_means(self, means):
        """The primary metric from means of primary_items over examples ([..., k] -> [...])."""

    def extra_tests(self, output_a, output_b) -> dict:
        """Tests of two seed ensembles reported beside the verdict, by key (e.g. "accuracy_test")."""

    def curves(self, output) -> dict:
        """Curves the report draws for a model (e.g. ROC); may be empty."""

    def context(self) -> dict | None:
        """What the report reads the scores against, or None."""

    def predictions_table(self, outputs: dict):
        """A DataFrame of the test split: the actual values and each model's predictions."""

    def confusion_tables(self, predictions, models: list[str]) -> dict:
        """Model -> a DataFrame of actual and predicted class (DVC's confusion plots); may be empty."""


def map_columns(df, cfg, source: str):
    """Rename source columns to canonical names.

    Explicit `columns:` mappings win; otherwise a canonical name matches a source column
    case-insensitively ("Close" -> close).
    """
    rename = {}
    for canonical, original in cfg.columns.items():
        if original not in df.columns:
            raise SchemaError(
                f"{source}: column '{original}' (mapped to {canonical} in params.yaml) not found; "
                f"columns are: {', '.join(map(str, df.columns))}"
            )
        rename[original] = canonical
    taken = set(rename.values())
    by_lower = {str(c).strip().lower(): c for c in df.columns if c not in rename}
    for canonical in cfg.MAPPABLE:
        if canonical not in taken and canonical in by_lower:
            rename[by_lower[canonical]] = canonical
    return df.rename(columns=rename)


def require_columns(df, required, source: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{source}: missing column(s) {', '.join(missing)}; columns are: "
            f"{', '.join(map(str, df.columns))} (map them with `columns:` in params.yaml)"
        )


def coerce_numeric(series, column: str, source: str):
    """Numbers as float64. Scattered bad cells become NaN (and are quarantined later);
    a column that is mostly not numbers is an error."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype("float64")
    numbers = pd.to_numeric(series, errors="coerce")
    ensure_mostly_parsed(series, numbers, column, source, "numbers")
    return numbers.astype("float64")


def coerce_dates(series, column: str, source: str, date_format: str | None):
    """Dates as naive datetime64 (UTC when the source carries a zone)."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series):
        dates = series
    else:
        # Price files repeat each date once per symbol: parse each distinct string once.
        codes, uniques = pd.factorize(series)
        parsed = _parse_dates(pd.Series(uniques).astype("string"), date_format)
        values = parsed.to_numpy(dtype="datetime64[ns]")
        dates = pd.Series(
            np.where(codes >= 0, values[np.maximum(codes, 0)], np.datetime64("NaT")),
            index=series.index,
        )
        hint = "dates (set date_format in params.yaml)"
        ensure_mostly_parsed(series, dates, column, source, hint)
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    return dates.astype("datetime64[ns]")


def _parse_dates(text, date_format: str | None):
    """Parse to naive UTC; without a format, ISO 8601 first, then the US m/d/Y spelling."""
    import pandas as pd

    if date_format:
        dates = pd.to_datetime(text, format=date_format, errors="coerce", utc=True)
    else:
        dates = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
        missing = dates.isna() & text.notna()
        if missing.any():
            us = pd.to_datetime(text[missing], format="%m/%d/%Y", errors="coerce", utc=True)
            dates = dates.where(~missing, us)
    return dates.dt.tz_localize(None)


def ensure_mostly_parsed(raw, parsed, column: str, source: str, what: str) -> None:
    present = raw.notna()
    failed = present & parsed.isna()
    if present.sum() and failed.sum() > MAX_UNPARSEABLE_FRACTION * present.sum():
        samples = ", ".join(repr(v) for v in raw[failed].head(3).tolist())
        first_row = int(failed.to_numpy().argmax())
        raise SchemaError(
            f"{source}: column '{column}' does not hold {what}: {int(failed.sum())} of "
            f"{int(present.sum())} values fail, first at row {first_row} (e.g. {samples})"
        )


def split_column(df, split: str | None):
    """The `split` column: from the source key (train/test), else kept from the table."""
    import pandas as pd

    if split is not None:
        return pd.Series(split, index=df.index, dtype="string")
    if "split" in df.columns:
        return df["split"].astype("string")
    return pd.Series(pd.NA, index=df.index, dtype="string")


def labels_as_strings(series):
    """Labels compare as strings; whole-number floats (1.0 from a CSV with NaNs) print as '1'."""
    import pandas as pd

    if pd.api.types.is_float_dtype(series):
        as_int = series.dropna()
        if (as_int == as_int.round()).all():
            return series.astype("Int64").astype("string")
    return series.astype("string")


# ---- preparation: splits and variable-length sequences -------------------------------------------


def stratified_split(labels, fraction: float, seed: int):
    """Indices (kept, held_out) with `fraction` held out, stratified by label when possible."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    try:
        kept, held = train_test_split(index, test_size=fraction, random_state=seed, stratify=labels)
    except ValueError:  # a label too rare to stratify: a plain random split still works
        kept, held = train_test_split(index, test_size=fraction, random_state=seed)
    return np.sort(kept), np.sort(held)


def assign_splits(split_column, labels, splits_cfg):
    """Index arrays of train/val/test for a classification table, one entry per example.

    The source's own test split is kept; otherwise `splits.test` is carved out. Validation is
    always carved from train, stratified.
    """
    import numpy as np

    split = np.asarray(split_column.fillna("").astype(str))
    labels = np.asarray(labels)
    if (split == "test").any():
        train_pool, test = np.flatnonzero(split != "test"), np.flatnonzero(split == "test")
    else:
        kept, held = stratified_split(labels, splits_cfg.test, splits_cfg.seed)
        train_pool, test = kept, held
    kept, held = stratified_split(labels[train_pool], splits_cfg.validation, splits_cfg.seed)
    return {"train": train_pool[kept], "val": train_pool[held], "test": test}


def ragged(sequences, dtype) -> tuple:
    """Variable-length sequences as one flat array plus offsets (sequence i is flat[o[i]:o[i+1]])."""
    import numpy as np

    lengths = np.fromiter((len(s) for s in sequences), dtype="int64", count=len(sequences))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.concatenate([np.asarray(s, dtype=dtype) for s in sequences]) if len(sequences) else np.zeros(0, dtype)
    return flat, offsets
