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


# The units a table's times may be shown in, as seconds: a table picks one per quantity.
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "µs": 1e-6}


def format_time_in(seconds, unit: str) -> str:
    """A time as a number in `unit` (one of TIME_UNITS), the unit left to the column or sentence:
    "12.3", "1,234"; a dash when unknown."""
    if seconds is None:
        return "—"
    value = seconds / TIME_UNITS[unit]
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def format_ratio(ratio) -> str:
    """ "1.9×", "0.82×", "12×": two significant digits, a trailing zero kept ("1.0×")."""
    if ratio is None:
        return "—"
    return f"{ratio:.0f}×" if ratio >= 10 else f"{ratio:#.2g}×"


def ratio_words(entry: dict) -> str:
    """A summary cost entry (sections.cost_ratios) in words, both times in its one unit:
    "training: gru 1.9× lstm's time, slower (lstm 12.3, gru 23.4 s per run)"."""
    a, b, ratio, seconds, unit = entry["a"], entry["b"], entry["ratio"], entry["seconds"], entry["unit"]
    shown = format_ratio(ratio)
    pace = "same" if shown == "1.0×" else ("slower" if ratio > 1 else "faster")
    times = f"{a} {format_time_in(seconds[a], unit)}, {b} {format_time_in(seconds[b], unit)} {unit} {entry['per']}"
    return f"{entry['what']}: {b} {shown} {a}'s time, {pace} ({times})"


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
    "time_in": format_time_in,
    "ratio": format_ratio,
    "ratio_words": ratio_words,
}
