"""The validate stage: run the kind's Great Expectations suite over the raw table.

Rows failing a row-level check go to data/quarantine/ with the failed checks' names; the rest go
to data/validated/. A failed table-level check, or more quarantine than params.yaml allows,
stops the stage with a message naming each failed expectation and a few sample rows.

GX evaluates the expectations; the page showing them (reports/validation/<name>/index.html) is
the project's own, escaped and offline (report/validation.py), in place of GX's Data Docs.

Each check's result says passed, failed, could not run, or skipped (passed only because its
column has no value at all). Sample rows put the checked columns first, show the kind's helper
columns ("_gap_days") only as a `computed` explanation, and show the source's text of a value
that did not parse beside its null ('null (source: "$101.59")', kept by ingest: sources.py).
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from seqbench.config import load_params
from seqbench.errors import SeqbenchError, ValidationFailed
from seqbench.io import write_json, write_parquet
from seqbench.kinds import get_kind
from seqbench.kinds.classify import label_mismatch
from seqbench.paths import Paths
from seqbench.sources import read_source_text
from seqbench.stages.report.validation import write_validation_page

SAMPLE_ROWS = 3
MESSAGE_CHARS = 80  # a sample value longer than this (a whole review) is cut in the error message
# The one expectation a column without values fails rather than passes vacuously; on any other,
# such a column (open, high, low or volume absent from a price file) makes the check "skipped".
NOT_NULL = "expect_column_values_to_not_be_null"


@dataclass
class CheckResult:
    name: str
    level: str
    expectation: str
    kwargs: dict
    success: bool
    unexpected_count: int
    failing_index: list  # index labels of failing rows (row checks)
    error: str | None = None  # why GX could not evaluate the check at all, e.g. a missing column


@dataclass
class Evidence:
    """What sample rows and messages are made of."""

    raw: object  # the table as ingest wrote it (data/raw/<name>.parquet)
    checked: object  # `raw` plus the kind's helper columns (named "_..."), which GX checks
    source_text: dict  # column -> {row: the source's text of a cell that parsed to null}
    helpers: dict  # helper column -> (what its value means, the columns it is computed from)


def validate(name: str, params_path: Path | str = "params.yaml") -> dict:
    """Validate data/raw/<name>.parquet; return the machine-readable result."""

    params_path = Path(params_path)
    cfg = load_params(params_path).dataset(name)
    paths = Paths(params_path.resolve().parent)
    kind = get_kind(cfg.kind)
    df = read_raw(paths.raw(name), name)
    missing = [c for c in kind.COLUMNS if c not in df.columns]
    if missing:
        raise ValidationFailed(
            f"{paths.raw(name)}: lacks the canonical column(s) {', '.join(missing)} of kind "
            f"{cfg.kind}; run `seqbench ingest {name}` again"
        )

    checked = kind.add_check_columns(df, cfg)
    checks = kind.checks(cfg, df)
    results = run_suite(name, checked, checks)
    evidence = Evidence(df, checked, read_source_text(paths.raw(name)), getattr(kind, "CHECK_COLUMNS", {}))

    reasons = failed_checks_per_row(results, checked, kind.GROUP_KEY)
    bad = df.index.isin(list(reasons))
    quarantine = df[bad].assign(failed_checks=[", ".join(reasons[i]) for i in df.index[bad]])
    clean = df[~bad].reset_index(drop=True)
    fraction = float(bad.sum()) / len(df) if len(df) else 0.0

    report = {
        "dataset": name,
        "kind": cfg.kind,
        "rows": int(len(df)),
        "rows_validated": int(len(clean)),
        "rows_quarantined": int(bad.sum()),
        "quarantine_fraction": round(fraction, 6),
        "max_quarantine_fraction": cfg.max_quarantine_fraction,
        "checks": [describe(r, evidence) for r in results],
        "summary": kind.summary(clean, cfg),
        "data_docs": str(paths.data_docs(name).relative_to(paths.root) / "index.html"),
    }
    problems = table_problems(results, evidence)
    if fraction > cfg.max_quarantine_fraction:
        problems.append(quarantine_problem(results, evidence, fraction, cfg.max_quarantine_fraction))
    report["success"] = not problems

    write_parquet(quarantine.reset_index(drop=True), paths.quarantine(name))
    write_validation_page(report, paths.data_docs(name))  # also when it failed: the page shows why
    write_json(report, paths.validation_report(name))
    if problems:
        paths.validated(name).unlink(missing_ok=True)
        raise ValidationFailed(f"validation of '{name}' failed:\n" + "\n".join(problems))
    write_parquet(clean, paths.validated(name))
    return report


def read_raw(path: Path, name: str):
    import pandas as pd

    if not path.exists():
        raise SeqbenchError(f"{path}: not found; run `seqbench ingest {name}` first")
    try:
        return pd.read_parquet(path, engine="pyarrow")
    except Exception as exc:  # noqa: BLE001 - pyarrow's errors for a damaged file are many
        raise SeqbenchError(f"{path}: unreadable ({exc}); run `seqbench ingest {name}` again") from None


def gx_context():
    """An in-memory GX context that writes nothing: no stores on disk, no Data Docs site."""
    # No usage statistics: the machines that run this reach no analytics host anyway.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def run_suite(name: str, df, checks) -> list[CheckResult]:
    """Validate `df` against `checks` with a GX checkpoint."""
    import great_expectations as gx

    context = gx_context()
    batch = context.data_sources.add_pandas("seqbench").add_dataframe_asset(name)
    suite = context.suites.add(gx.ExpectationSuite(name=f"{name}_suite"))
    for check in checks:
        check.expectation.meta = {"check": check.name, "level": check.level}
        suite.add_expectation(check.expectation)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch.add_batch_definition_whole_dataframe("all"), suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"{name}_checkpoint",
            validation_definitions=[definition],
            # No UpdateDataDocsAction: GX's pages write failing values unescaped and load from CDNs.
            actions=[],
            # COMPLETE lists every failing row's index, which quarantine needs.
            result_format={"result_format": "COMPLETE"},
        )
    )
    outcome = checkpoint.run(batch_parameters={"dataframe": df})
    results = []
    for run in outcome.run_results.values():
        for r in run.results:
            config = r.expectation_config
            exception = r.exception_info or {}
            error = exception.get("exception_message") if exception.get("raised_exception") else None
            results.append(
                CheckResult(
                    name=config.meta["check"],
                    level=config.meta["level"],
                    expectation=config.type,
                    kwargs={k: v for k, v in config.kwargs.items() if k != "batch_id"},
                    success=bool(r.success),
                    unexpected_count=int(r.result.get("unexpected_count") or 0),
                    failing_index=list(r.result.get("unexpected_index_list") or []),
                    error=error,
                )
            )
    return results


def failed_checks_per_row(results, df, group_key: str | None) -> dict:
    """Index label -> names of the row checks it failed; a group (clip) fails as a whole."""
    reasons = defaultdict(list)
    for result in results:
        if result.level != "row" or result.success or result.error:
            continue
        index = result.failing_index
        if group_key is not None:
            groups = df.loc[index, group_key].unique()
            index = df.index[df[group_key].isin(groups)]
        for i in index:
            reasons[i].append(result.name)
    return reasons


# ---- each check as the result, the page and the error message show it ---------------------------


def checked_columns(result: CheckResult) -> list[str]:
    """The columns an expectation is about, in its own order (a pair: A, then B)."""
    kwargs = result.kwargs
    named = [kwargs.get("column"), *(kwargs.get("column_list") or []), kwargs.get("column_A"), kwargs.get("column_B")]
    return [c for c in named if c]


def status_of(result: CheckResult, raw) -> tuple[str, str | None]:
    """(passed, failed, could not run or skipped; why it was skipped). A check passed only
    because its column has no value at all did not check anything: it says "skipped"."""
    if result.error:
        return "could not run", None
    if not result.success:
        return "failed", None
    if result.level == "row" and len(raw) == 0:
        return "skipped", "no rows to check"
    absent = [c for c in checked_columns(result) if c in raw.columns and raw[c].isna().all()]
    if absent and result.expectation != NOT_NULL:
        return "skipped", f"column{'s' if len(absent) > 1 else ''} {', '.join(absent)} absent (no value in the data)"
    return "passed", None


def shown_columns(result: CheckResult, evidence: Evidence) -> list[str]:
    """The data columns of a sample row: the checked ones first (for a helper column, those it is
    computed from), then the rest. Helper columns themselves are not data: never shown as such."""
    first = []
    for column in checked_columns(result):
        first.extend(evidence.helpers[column][1] if column in evidence.helpers else [column])
    data = list(evidence.raw.columns)
    return list(dict.fromkeys([c for c in first if c in data] + data))


def samples(result: CheckResult, evidence: Evidence) -> list[dict]:
    """The first SAMPLE_ROWS failing rows: `row` (its position in the raw table), `computed` (the
    helper values the check read, in words) where it read any, then the shown columns."""
    if not result.failing_index:
        return []
    columns = shown_columns(result, evidence)
    helpers = [c for c in checked_columns(result) if c in evidence.helpers]
    rows = evidence.checked.loc[sample_index(result.failing_index, columns, evidence)]
    return [sample_row(int(i), row, columns, helpers, evidence) for i, row in rows.iterrows()]


def sample_index(failing: list, columns: list[str], evidence: Evidence) -> list:
    """SAMPLE_ROWS of the failing rows, those whose source text did not parse first: a clip fails
    whole, and its frame written "two" says more than its first, good frames."""
    unparsed = {row for column in columns for row in evidence.source_text.get(column, {})}
    return sorted(failing, key=lambda i: i not in unparsed)[:SAMPLE_ROWS]


def sample_row(i: int, row, columns: list[str], helpers: list[str], evidence: Evidence) -> dict:
    sample = {"row": i}
    if helpers:
        sample["computed"] = "; ".join(f"{evidence.helpers[h][0]}: {helper_text(row[h])}" for h in helpers)
    for column in columns:
        sample[column] = cell_value(row[column], evidence.source_text.get(column, {}).get(i))
    return sample


def helper_text(value) -> str:
    value = _plain(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a count (days, frames), float only because nulls were possible
    return "none" if value is None else str(value)


def cell_value(value, source_text: str | None):
    """A sample cell, JSON-friendly; a null that was text in the source says what the text was."""
    import json

    value = _plain(value)
    if value is None and source_text is not None:
        return f"null (source: {json.dumps(source_text, ensure_ascii=False)})"
    return value


def _plain(value):
    """JSON-friendly scalars."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def describe(result: CheckResult, evidence: Evidence) -> dict:
    status, skipped_because = status_of(result, evidence.raw)
    return {
        "check": result.name,
        "level": result.level,
        "expectation": result.expectation,
        "kwargs": result.kwargs,
        "success": result.success,
        "status": status,
        "skipped_because": skipped_because,
        "unexpected_count": result.unexpected_count,
        "error": result.error,
        "found": found_beside_allowed(result, evidence),
        "sample_rows": [] if result.success else samples(result, evidence),
    }


def found_beside_allowed(result: CheckResult, evidence: Evidence) -> str | None:
    """For a failed set check on a data column (the declared labels): the values the data has
    beside the ones declared, "found negative, positive; declared neg, pos"."""
    column = result.kwargs.get("column")
    if result.success or result.error or result.expectation != "expect_column_values_to_be_in_set":
        return None
    if column not in evidence.raw.columns:
        return None
    return label_mismatch(evidence.raw[column], result.kwargs.get("value_set") or [])


def _explain(result: CheckResult, evidence: Evidence) -> str:
    column = result.kwargs.get("column") or result.kwargs.get("column_list") or ""
    if result.error:
        return f"  - {result.name} ({result.expectation}) could not run: {result.error}"
    found = found_beside_allowed(result, evidence)
    shown = found or "e.g. " + "; ".join(sample_text(s) for s in samples(result, evidence))
    return (
        f"  - {result.name} ({result.expectation}{' on ' + str(column) if column else ''}): "
        f"{result.unexpected_count} rows; {shown}"
    )


def sample_text(sample: dict) -> str:
    """A sample row in one line: "row 3: close=null (source: "$1"), date=2020-01-06, ..."."""
    cells = ", ".join(f"{k}={_cut(v)}" for k, v in sample.items() if k != "row")
    return f"row {sample['row']}: {cells}"


def _cut(value) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + "…"


def table_problems(results, evidence: Evidence) -> list[str]:
    """Failed table checks, and checks of either level that could not run at all."""
    return [
        f"table check failed:\n{_explain(r, evidence)}"
        for r in results
        if (r.level == "table" and not r.success) or r.error
    ]


def quarantine_problem(results, evidence: Evidence, fraction: float, limit: float) -> str:
    failed = [_explain(r, evidence) for r in results if r.level == "row" and not r.success]
    return (
        f"{fraction:.1%} of rows failed row checks, more than max_quarantine_fraction "
        f"{limit:.1%} in params.yaml:\n" + "\n".join(failed)
    )
