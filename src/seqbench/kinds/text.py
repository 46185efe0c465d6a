"""Labelled texts: canonical schema `text, label, split`.

`source: {train: a.csv, test: b.csv}` sets `split` from the keys; a single source keeps its own
`split` column if it has one (null otherwise: preparation carves the splits).
"""

from __future__ import annotations

from seqbench.kinds.base import Check, labels_as_strings, map_columns, require_columns, split_column

COLUMNS = ("text", "label", "split")
GROUP_KEY = None
# Sources are decoded with errors="replace", so undecodable bytes show up as U+FFFD.
REPLACEMENT_CHARACTER = "\ufffd"


def canonicalize(tables: dict, cfg):
    import pandas as pd

    parts = []
    for key, df in tables.items():
        source = cfg.sources()[key]
        df = map_columns(df, cfg, source)
        require_columns(df, ["text", "label"], source)
        parts.append(
            pd.DataFrame(
                {
                    "text": df["text"].astype("string"),
                    "label": labels_as_strings(df["label"]),
                    "split": split_column(df, key),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def add_check_columns(df, cfg):
    return df


def checks(cfg, df) -> list[Check]:
    import great_expectations as gx

    E = gx.expectations
    return [
        Check("has_rows", "table", E.ExpectTableRowCountToBeBetween(min_value=1)),
        Check("text_present", "row", E.ExpectColumnValuesToNotBeNull(column="text")),
        Check("text_not_blank", "row", E.ExpectColumnValuesToMatchRegex(column="text", regex=r"\S")),
        Check("text_valid_utf8", "row", E.ExpectColumnValuesToNotMatchRegex(column="text", regex=REPLACEMENT_CHARACTER)),
        Check("text_within_length_cap", "row", E.ExpectColumnValueLengthsToBeBetween(column="text", min_value=1, max_value=cfg.max_chars)),
        Check("label_present", "row", E.ExpectColumnValuesToNotBeNull(column="label")),
        Check("label_in_declared_set", "row", E.ExpectColumnValuesToBeInSet(column="label", value_set=list(cfg.labels))),
    ]


def summary(df, cfg) -> dict:
    return {"class_balance": class_balance(df)}


def class_balance(df) -> dict:
    """Label counts and fractions, overall and per split."""
    groups = {"all": df}
    groups.update({str(s): part for s, part in df.groupby("split", dropna=True)})
    balance = {}
    for name, part in groups.items():
        counts = part["label"].value_counts(dropna=False)
        balance[name] = {
            str(label): {"count": int(n), "fraction": round(float(n) / max(len(part), 1), 4)}
            for label, n in counts.items()
        }
    return balance
