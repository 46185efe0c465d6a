"""The validate stage: run the kind's Great Expectations suite over the raw table.

Rows failing a row-level check go to data/quarantine/ with the failed checks' names; the rest go
to data/validated/. A failed table-level check, or more quarantine than params.yaml allows,
stops the stage with a message naming each failed expectation and a few sample rows.

GX evaluates the expectations; the page showing them (reports/validation/<name>/index.html) is
the project's own, escaped and offline (report/validation.py), in place of GX's Data Docs.
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
from seqbench.paths import Paths
from seqbench.stages.report.validation import write_validation_page

SAMPLE_ROWS = 3


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
        "checks": [describe(r, checked) for r in results],
        "summary": kind.summary(clean, cfg),
        "data_docs": str(paths.data_docs(name).relative_to(paths.root) / "index.html"),
    }
    problems = table_problems(results, checked)
    if fraction > cfg.max_quarantine_fraction:
        problems.append(quarantine_problem(results, checked, fraction, cfg.max_quarantine_fraction))
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


def samples(result: CheckResult, df) -> list[dict]:
    rows = df.loc[result.failing_index[:SAMPLE_ROWS]] if result.failing_index else df.iloc[:0]
    shown = [c for c in rows.columns if not c.startswith("_")] + ([c for c in rows.columns if c.startswith("_")])
    return [{"row": int(i), **{c: _plain(v) for c, v in row.items()}} for i, row in rows[shown].iterrows()]


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


def describe(result: CheckResult, df) -> dict:
    return {
        "check": result.name,
        "level": result.level,
        "expectation": result.expectation,
        "kwargs": result.kwargs,
        "success": result.success,
        "unexpected_count": result.unexpected_count,
        "error": result.error,
        "sample_rows": [] if result.success else samples(result, df),
    }


def _explain(result: CheckResult, df) -> str:
    column = result.kwargs.get("column") or result.kwargs.get("column_list") or ""
    if result.error:
        return f"  - {result.name} ({result.expectation}) could not run: {result.error}"
    return (
        f"  - {result.name} ({result.expectation}{' on ' + str(column) if column else ''}): "
        f"{result.unexpected_count} rows; e.g. {samples(result, df)}"
    )


def table_problems(results, df) -> list[str]:
    """Failed table checks, and checks of either level that could not run at all."""
    return [
        f"table check failed:\n{_explain(r, df)}" for r in results if (r.level == "table" and not r.success) or r.error
    ]


def quarantine_problem(results, df, fraction: float, limit: float) -> str:
    failed = [_explain(r, df) for r in results if r.level == "row" and not r.success]
    return (
        f"{fraction:.1%} of rows failed row checks, more than max_quarantine_fraction "
        f"{limit:.1%} in params.yaml:\n" + "\n".join(failed)
    )
