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


def write_validation_page(report: dict, folder: Path) -> Path:
    """Render `report` (validate's JSON result) into `folder`/index.html, replacing the folder whole."""
    from seqbench.io import atomic_dir

    with atomic_dir(folder) as tmp:
        (tmp / "index.html").write_text(render_validation_page(report), encoding="utf-8")
    return folder / "index.html"


def render_validation_page(report: dict) -> str:
    from seqbench.stages.report.pages import content_security_policy, environment

    env = environment()
    env.filters.update({"kwarg": kwarg_text, "cell": cell_text})
    summary = dict(report.get("summary") or {})
    balance = summary.pop("class_balance", None)
    return env.get_template("validation.html.j2").render(
        v=report,
        checks=[check_view(c) for c in report["checks"]],
        balance=balance_table(balance),
        summary=[(key.replace("_", " "), summary_text(value)) for key, value in summary.items()],
        csp=content_security_policy(),
    )


def check_view(check: dict) -> dict:
    """One expectation as the page lists it: its outcome in words and its sample rows' columns."""
    status = "could not run" if check.get("error") else ("passed" if check["success"] else "failed")
    samples = check.get("sample_rows") or []
    columns = list(dict.fromkeys(key for row in samples for key in row))
    return {**check, "status": status, "columns": columns}


def kwarg_text(value) -> str:
    """An expectation's argument as written in JSON (lists, numbers), strings as they are."""
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
