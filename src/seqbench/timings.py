"""Measured times, kept apart from results.

A stage's results are the same bytes each time it reruns with unchanged code and data on this
machine; the seconds it took are not. So that a fresh `make run` of unchanged code leaves git and
dvc.lock as they were, what was timed (training and search seconds, inference latency, peak
memory) goes to reports/timings/<dataset>/<stage>.json, which no DVC stage declares and git
ignores, and readers merge it back into the result (`read_result`). A run folder keeps its own
times in timings.json beside metrics.json; .dvcignore leaves that file (and the checkpoints, which
hold the same times) out of the folder's hash.

Where the times file is missing (a workspace that pulled its results from a DVC remote), readers
get the result without them, and the report shows a dash for every time and no time ratio.
"""

from __future__ import annotations

import json
from pathlib import Path

from seqbench.paths import Paths

# Keys whose values are measured on the clock or the memory counter: every such key, at any
# depth, moves to the times file with the path that leads to it.
TIMED = frozenset(
    {
        "seconds",
        "wall_seconds",
        "train_seconds",
        "mean_train_seconds",
        "seconds_to_best",
        "train_samples_per_second",
        "last_fit_seconds",
        "seconds_per_sample",
        "peak_bytes",
    }
)


def split(value):
    """(result, times): `value` without its TIMED keys, and those keys alone in the same shape
    (None where a branch holds none). Lists keep their length on both sides."""
    if isinstance(value, dict):
        kept, timed = {}, {}
        for key, item in value.items():
            if key in TIMED:
                timed[key] = item
                continue
            kept[key], inner = split(item)
            if inner is not None:
                timed[key] = inner
        return kept, (timed or None)
    if isinstance(value, list):
        parts = [split(item) for item in value]
        times = [t for _, t in parts]
        return [r for r, _ in parts], (times if any(t is not None for t in times) else None)
    return value, None


def merged(result, times):
    """`result` with `times` (split's second half) put back where they came from."""
    if times is None:
        return result
    if isinstance(result, dict) and isinstance(times, dict):
        out = dict(result)
        for key, item in times.items():
            out[key] = merged(out[key], item) if key in out else item
        return out
    if isinstance(result, list) and isinstance(times, list) and len(result) == len(times):
        return [merged(r, t) for r, t in zip(result, times)]
    return result  # times of another shape (an older run): the result alone


def write_split(data: dict, result_path: Path, times_path: Path) -> dict:
    """Write `data`'s result to result_path and its times to times_path (times first: a result
    never names times that are not there); return the result part."""
    from seqbench.io import write_json

    result, times = split(data)
    write_json(times or {}, times_path)
    write_json(result, result_path)
    return result


def read_times(path: Path) -> dict | None:
    """A times file, or None when it is missing or unreadable (times are never required)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def times_path(paths: Paths, name: str, stage: str) -> Path:
    return paths.root / "reports" / "timings" / name / f"{stage}.json"


def write_stage(paths: Paths, name: str, stage: str, data: dict, result_path: Path) -> dict:
    """A stage's output: the result at result_path (DVC's), its times under reports/timings."""
    return write_split(data, result_path, times_path(paths, name, stage))


def read_stage(paths: Paths, name: str, stage: str, result_path: Path, address: str) -> dict:
    """A stage's result (read_stage_json: a missing one names the stage to run) with its times."""
    from seqbench.io import read_stage_json

    return merged(read_stage_json(result_path, address), read_times(times_path(paths, name, stage)))


def read_evaluation(paths: Paths, name: str) -> dict:
    return read_stage(paths, name, "evaluate", paths.evaluation(name), f"evaluate@{name}")


def read_search(paths: Paths, name: str) -> dict:
    return read_stage(paths, name, "search", paths.search_result(name), f"search@{name}")
