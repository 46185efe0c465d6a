"""Number formatting for the report (the template's Jinja filters, and the search tables)."""

from __future__ import annotations


def format_number(value, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    return f"{value:.{digits}g}"


def format_value(value) -> str:
    """A setting as a person reads it: numbers formatted, true/false, none as a dash."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, (int, float)):
        return format_number(value)
    return str(value)


def format_ci(entry: dict | None, digits: int = 4) -> str:
    """ "mean [low, high]" of a mean_ci entry; just the mean without an interval."""
    if not entry or entry.get("mean") is None:
        return "—"
    if entry.get("low") is None:
        return format_number(entry["mean"], digits)
    low, high = format_number(entry["low"], digits), format_number(entry["high"], digits)
    return f"{format_number(entry['mean'], digits)} [{low}, {high}]"


def format_percent(value) -> str:
    return "—" if value is None else f"{value:.1%}"


def format_bytes(value) -> str:
    if value is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


def format_seconds(value) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "0 s"
    if value < 1e-3:
        return f"{value * 1e6:.1f} µs"
    if value < 1:
        return f"{value * 1e3:.2f} ms"
    return f"{value:.1f} s"


def answer_class(verdict: dict) -> str:
    """The page's CSS class for a verdict's answer: win, equivalent, undecided or void."""
    answer = verdict.get("answer") or ("b_better" if verdict.get("winner") else "undecided")
    return "win" if answer.endswith("_better") else answer


FILTERS = {
    "answer": answer_class,
    "num": format_number,
    "ci": format_ci,
    "pct": format_percent,
    "size": format_bytes,
    "secs": format_seconds,
    "value": format_value,
}
