"""The report stage: reports/index.html from every dataset's evaluation, training curves and
validation result. Jinja2 templates (autoescaped) plus Plotly figures; plotly.js is inlined once,
so the page opens from file:// with no network.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

from seqbench.errors import SeqbenchError
from seqbench.paths import Paths

PACKAGES = ["seqbench", "torch", "pytorch-lightning", "prefect", "dvc", "great-expectations", "pandas",
            "scikit-learn", "scipy", "aeon", "plotly"]


def render_report(params_path: Path | str = "params.yaml", output: Path | str | None = None) -> Path:
    from seqbench.config import load_params
    from seqbench.io import atomic_path

    params_path = Path(params_path)
    params = load_params(params_path)
    paths = Paths(params_path.resolve().parent)
    output = Path(output) if output else paths.root / "reports" / "index.html"
    sections = [dataset_section(paths, name, output.parent) for name in params.datasets]
    html = render_html(sections, run_metadata(paths.root, params_path))
    with atomic_path(output) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return output


def render_html(sections: list[dict], metadata: dict) -> str:
    import jinja2
    from plotly.offline import get_plotlyjs

    from seqbench.stats import ALPHA, VERDICT_RULE

    env = jinja2.Environment(loader=jinja2.PackageLoader("seqbench.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update(num=format_number, ci=format_ci, pct=format_percent, size=format_bytes, secs=format_seconds)
    return env.get_template("index.html.j2").render(
        sections=sections, meta=metadata, plotly_js=get_plotlyjs(), verdict_rule=VERDICT_RULE,
        alpha=ALPHA,
    )


def read_json(path: Path, stage: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeqbenchError(f"{path}: not found; run `dvc repro {stage}` first") from None
    except json.JSONDecodeError as exc:
        raise SeqbenchError(f"{path}: not valid JSON ({exc}); rerun `dvc repro {stage}`") from None


def dataset_section(paths: Paths, name: str, report_dir: Path) -> dict:
    """Everything one dataset's section shows: numbers, figures, validation."""
    import os

    import pandas as pd

    from seqbench.report import figures

    result = read_json(paths.root / "reports" / "eval" / f"{name}.json", f"evaluate@{name}")
    validation = read_json(paths.validation_report(name), f"validate@{name}")
    predictions = pd.read_csv(paths.root / "reports" / "eval" / name / "predictions.csv",
                              parse_dates=["date"] if result["task"] == "forecast" else None)
    curves = pd.read_csv(paths.root / "reports" / "train" / name / "learning_curves.csv")
    models = result["cells"] + result["baselines"]
    plots = {"learning_curves": figures.learning_curves(curves)}
    if result["task"] == "forecast":
        plots["forecast"] = figures.forecast_vs_actual(predictions, models, result["baselines"])
        plots["residuals"] = figures.residuals(predictions, models, result["baselines"])
    else:
        labels = result["labels"]
        matrices = {title_of(result, m): model_scores(result, m)["confusion_matrix"] for m in models}
        plots["confusion"] = figures.confusion_matrices(matrices, labels)
        plots["roc"] = figures.roc_curves(result["curves"], labels, result["baselines"])
    docs = paths.data_docs(name) / "index.html"
    return {
        "name": name,
        "result": result,
        "primary": result["comparisons"][0]["metric"],
        "metric_names": metric_names(result),
        "plots": plots,
        "validation": validation,
        "data_docs": Path(os.path.relpath(docs, report_dir)).as_posix() if docs.exists() else None,
        "disagreements": disagreements(predictions, result),
        "summary": summary_row(result),
    }


def model_scores(result: dict, model: str) -> dict:
    entry = result["models"][model]
    return entry["scores"] if entry["baseline"] else entry["ensemble"]


def title_of(result: dict, model: str) -> str:
    seeds = len(result["seeds"])
    return model if result["models"][model]["baseline"] else f"{model} ({seeds} seeds combined)"


def metric_names(result: dict) -> list[str]:
    first = result["models"][result["cells"][0]]["summary"]
    return list(first)


def disagreements(predictions, result: dict, limit: int = 8) -> list[dict]:
    """Test examples where the first two cells' combined predictions differ (classification)."""
    if result["task"] != "classify" or len(result["cells"]) < 2 or "example" not in predictions:
        return []
    a, b = result["cells"][:2]
    rows = predictions[predictions[a] != predictions[b]].head(limit)
    return [{"example": str(r["example"]), "actual": str(r["actual"]), a: str(r[a]), b: str(r[b])}
            for _, r in rows.iterrows()]


def summary_row(result: dict) -> dict:
    """The summary table's row: the cells' verdict, effect and cost, and the best baseline."""
    cells = result["cells"]
    head = result["comparisons"][0]
    against_baseline = [c for c in result["comparisons"] if c["b"] in result["baselines"]]
    return {
        "comparison": head,
        "baseline": against_baseline[0]["b"] if against_baseline else None,
        "baseline_value": model_scores(result, against_baseline[0]["b"])[head["metric"]] if against_baseline else None,
        "cells": {c: result["models"][c]["summary"][head["metric"]] for c in cells},
        "vs_baseline": {c["a"]: c["verdict"] for c in against_baseline},
    }


def run_metadata(root: Path, params_path: Path) -> dict:
    import os
    import platform
    import subprocess
    from importlib import metadata

    try:
        revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                  text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        revision += " (uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        revision = "not a git checkout"
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "revision": revision,
        "params_sha256": hashlib.sha256(params_path.read_bytes()).hexdigest()[:16],
        "versions": versions,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}",
        "gpu": gpu_name(),
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"


# ---- number formatting (Jinja filters) ---------------------------------------------------------


def format_number(value, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    return f"{value:.{digits}g}"


def format_ci(entry: dict | None, digits: int = 4) -> str:
    """"mean [low, high]" of a mean_ci entry; just the mean without an interval."""
    if not entry or entry.get("mean") is None:
        return "—"
    if entry.get("low") is None:
        return format_number(entry["mean"], digits)
    return f"{format_number(entry['mean'], digits)} [{format_number(entry['low'], digits)}, {format_number(entry['high'], digits)}]"


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
