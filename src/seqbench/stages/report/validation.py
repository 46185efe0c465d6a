"""The validate stage's page, reports/validation/<dataset>/index.html: each expectation Great
Expectations evaluated, what failed with sample rows, the row counts and the data's summary.

The project's own page rather than GX's Data Docs: those write failing values into the HTML
unescaped (a review carrying <img onerror=...> ran script when the page was opened) and load
their scripts and styles from CDNs. This one is autoescaped, self-contained and runs no script.
"""

from __future__ import annotations

import json
from pathlib import Path

SHOWN_CHARS = 300  # a sample value longer than this (a whole review) is cut on the page
# A check's outcome, worst first: the page's headline names the worst one any check has.
OUTCOMES = ("failed", "could not run", "skipped", "passed")
# Bounds at or beyond this stand for "no bound": validate's checks of finite numbers use the
# largest float (kinds/base.py FLOAT_MAX), a number the page must not print.
NO_BOUND = 1e308
BOUND_WORDS = {"min_value": "no lower bound", "max_value": "no upper bound"}


def write_validation_page(report: dict, folder: Path) -> Path:
    """Render `report` (validate's JSON result) into `folder`/index.html, replacing the folder whole."""
    from seqbench.io import atomic_dir

    with atomic_dir(folder) as tmp:
        (tmp / "index.html").write_text(render_validation_page(report), encoding="utf-8")
    return folder / "index.html"


def render_validation_page(report: dict) -> str:
    from seqbench.stages.report.pages import content_security_policy, environment

    env = environment()
    env.filters.update({"cell": cell_text})
    summary = dict(report.get("summary") or {})
    balance = summary.pop("class_balance", None)
    checks = [check_view(c) for c in report["checks"]]
    return env.get_template("validation.html.j2").render(
        v=report,
        headline=headline(report, checks),
        checks=checks,
        balance=balance_table(balance),
        summary=[(key.replace("_", " "), summary_text(value)) for key, value in summary.items()],
        csp=content_security_policy(),
    )


def check_view(check: dict) -> dict:
    """One expectation as the page lists it: its outcome in words, its arguments and its sample
    rows' columns (in the rows' order: validate puts the failing columns first)."""
    samples = check.get("sample_rows") or []
    return {
        **check,
        "status": status_of(check),
        "arguments": [(key, argument_text(key, value)) for key, value in (check.get("kwargs") or {}).items()],
        "columns": list(dict.fromkeys(key for row in samples for key in row)),
    }


def status_of(check: dict) -> str:
    """validate's `status`; for a result written before it had one, from success and error."""
    if check.get("status") in OUTCOMES:
        return check["status"]
    return "could not run" if check.get("error") else ("passed" if check.get("success") else "failed")


def headline(report: dict, checks: list[dict]) -> dict:
    """The outcome over the page, {"text", "css"}: the worst check's (OUTCOMES), in words. Failed
    row checks whose rows fit the quarantine allowance leave the stage passed: the words say so."""
    statuses = [c["status"] for c in checks]
    worst = next((o for o in OUTCOMES if o in statuses), "passed")
    count = statuses.count(worst)
    if worst == "failed" and report.get("success"):
        rows = plural(report.get("rows_quarantined") or 0, "row")
        return {"text": f"passed with {rows} quarantined ({plural(count, 'row check')} failed)", "css": "warn"}
    if worst in ("failed", "could not run"):
        return {"text": f"failed: {plural(count, 'check')} {worst}", "css": "fail"}
    if not report.get("success", True):
        return {"text": "failed", "css": "fail"}
    if worst == "skipped":
        return {"text": f"passed; {plural(count, 'check')} skipped (no data to check)", "css": "ok"}
    return {"text": "passed", "css": "ok"}


def plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def argument_text(key: str, value) -> str:
    """An expectation's argument as written in JSON (lists, numbers), strings as they are; a bound
    that stands for none says so instead of printing the largest float."""
    if key in BOUND_WORDS and (value is None or (isinstance(value, float) and abs(value) >= NO_BOUND)):
        return BOUND_WORDS[key] + ("" if value is None else " (any finite number)")
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def cell_text(value) -> str:
    """A sample row's value: null shown as such, a long text cut (the whole row is in quarantine)."""
    if value is None:
        return "null"
    text = str(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + f"… ({len(text):,} characters)"


def balance_table(balance: dict | None) -> dict | None:
    """Class balance {split: {label: {count, fraction}}} as one table: a row per label, a column per split."""
    if not balance:
        return None
    splits = list(balance)
    labels = list(dict.fromkeys(label for counts in balance.values() for label in counts))
    return {
        "splits": splits,
        "rows": [{"label": label, "per_split": [balance[s].get(label) for s in splits]} for label in labels],
    }


def summary_text(value) -> str:
    """A summary entry in one line: {"AAA": 250, "BBB": 240} -> "AAA: 250; BBB: 240"."""
    if isinstance(value, dict):
        return "; ".join(f"{k}: {summary_text(v)}" for k, v in value.items()) or "—"
    if isinstance(value, list):
        return ", ".join(summary_text(v) for v in value) or "—"
    return "—" if value is None else str(value)
