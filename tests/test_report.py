"""The HTML report: rendered from evaluation files, opened in real headless Chromium from file://."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import check_in_browser, open_report
from seqbench.evaluate import ClassifierScorer, ForecastScorer, assemble

SCRIPT = "<script>alert(1)</script>"
IMAGE = '<img src=x onerror="document.title=\'pwned\'">'
CELLS, SEEDS = ["lstm", "gru"], [0, 1]


def fake_cost() -> dict:
    """The shape evaluate.costs() writes; the real measurement is tested with real runs."""
    ci = {"mean": 1.0, "low": 0.5, "high": 1.5, "n": 2}
    return {cell: {"trainable_parameters": 1234, "checkpoint_bytes": 4096, "device": "cpu", "epochs_run": ci,
                   "best_epoch": ci, "seconds_to_best": ci, "train_seconds": ci, "train_samples_per_second": ci,
                   "latency": {"batch_1": {"seconds_per_sample": 2e-4, "batch": 1},
                               "batch_256": {"seconds_per_sample": 1e-5, "batch": 256}},
                   "peak_memory": {"peak_bytes": 2**20, "measure": "CPU peak resident growth"}} for cell in CELLS}


def write_dataset(root: Path, name: str, result: dict, predictions: pd.DataFrame, columns=("close",)) -> None:
    result["cost"] = fake_cost()
    (root / "reports/eval" / name).mkdir(parents=True)
    (root / "reports/eval" / f"{name}.json").write_text(json.dumps(result, default=str))
    predictions.to_csv(root / "reports/eval" / name / "predictions.csv", index=False)
    curves = pd.DataFrame([{"cell": c, "seed": s, "epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e + s / 100,
                            "seconds": 0.1} for c in CELLS for s in SEEDS for e in range(1, 6)])
    (root / "reports/train" / name).mkdir(parents=True)
    curves.to_csv(root / "reports/train" / name / "learning_curves.csv", index=False)
    docs = root / "reports/validation" / name
    docs.mkdir(parents=True)
    (docs / "index.html").write_text("<html><body>Data Docs</body></html>")
    validation = {"success": True, "rows_validated": 100, "rows_quarantined": 1, "quarantine_fraction": 0.01,
                  "checks": [{"check": f"{columns[0]}_not_null", "level": "row", "success": False,
                              "unexpected_count": 1}]}
    (root / "reports/validation" / f"{name}.json").write_text(json.dumps(validation))


def stock_evaluation(rng) -> tuple[dict, pd.DataFrame]:
    n = 120
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n + 1)))
    target = np.diff(np.log(close))
    arrays = {"target": np.append(target, np.nan).astype("float32"), "close": close,
              "date": pd.date_range("2020-01-01", periods=n + 1).to_numpy().astype("int64"),
              "symbol": np.array(["TOY"] * (n + 1)), "ends_train": np.arange(0, 80), "ends_test": np.arange(80, n)}
    meta = {"task": "forecast", "target_mean": 0.0, "target_std": 1.0, "horizon": 1,
            "sizes": {"train": 80, "val": 0, "test": 40}}
    outputs = {(c, s): rng.normal(0, 0.01, 40) for c in CELLS for s in SEEDS}
    baselines = {"random_walk": np.zeros(40), "ridge_ar": rng.normal(0, 0.005, 40)}
    return assemble("prices", "stock", meta, ForecastScorer(arrays, meta), outputs, baselines, CELLS, SEEDS)


def text_evaluation(rng) -> tuple[dict, pd.DataFrame]:
    labels = np.array([0, 1] * 20)
    arrays = {"labels": labels, "idx_test": np.arange(40)}
    meta = {"task": "classify", "labels": ["<b>great</b>", "other"], "sizes": {"train": 60, "val": 10, "test": 40}}
    confident = np.eye(2)[labels] * 0.8 + 0.1
    outputs = {("lstm", s): confident.copy() for s in SEEDS}
    outputs.update({("gru", s): confident[:, ::-1].copy() for s in SEEDS})  # every answer flipped
    baselines = {"majority": np.full((40, 2), 0.5)}
    result, predictions = assemble("reviews", "text", meta, ClassifierScorer(arrays, meta), outputs, baselines, CELLS, SEEDS)
    examples = [SCRIPT, IMAGE] + [f"review {i}" for i in range(38)]
    predictions.insert(0, "example", examples)
    return result, predictions


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    import yaml

    from seqbench.report import render_report

    root = tmp_path_factory.mktemp("report-project")
    params = {"datasets": {"prices": {"kind": "stock", "source": "prices.csv"},
                           "reviews": {"kind": "text", "source": "reviews.csv", "labels": ["<b>great</b>", "other"]}}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    rng = np.random.default_rng(0)
    write_dataset(root, "prices", *stock_evaluation(rng))
    write_dataset(root, "reviews", *text_evaluation(rng), columns=("text",))
    return render_report(root / "params.yaml")


def test_report_is_self_contained_and_escapes_data(rendered):
    html = rendered.read_text(encoding="utf-8")
    # Nothing is fetched: no script, stylesheet or image comes from elsewhere (plotly.js is inline).
    assert re.findall(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=", html) == []
    assert html.count("Plotly.newPlot") >= 5
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert "<b>great</b>" not in html
    assert 'href="validation/reviews/index.html"' in html


def test_the_verdict_in_the_report_follows_the_tests(rendered):
    result = json.loads((rendered.parent / "eval/reviews.json").read_text())
    lstm_vs_gru = result["comparisons"][0]
    assert lstm_vs_gru["test"]["only_a_correct"] == 40 and lstm_vs_gru["verdict"]["winner"] == "lstm"
    html = rendered.read_text(encoding="utf-8")
    assert "lstm is better" in html
    assert "no significant difference" in html  # random forecasts on prices


def test_report_opens_in_headless_chromium(rendered, browser):
    check_in_browser(browser, rendered, ["prices", "reviews"], "report.png")


def test_data_text_shows_as_text_in_the_browser(rendered, browser):
    open_report(browser, rendered)
    examples = browser.find_element("css selector", "#reviews table.examples").text
    assert SCRIPT in examples and "<img src=x" in examples
    assert browser.title != "pwned"
    assert browser.execute_script("return document.querySelectorAll('section img').length") == 0


def test_report_fits_a_phone_width_window(rendered, browser):
    browser.set_window_size(390, 844)
    try:
        open_report(browser, rendered)
        # Wide tables scroll inside their own box; the page itself does not scroll sideways.
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1
    finally:
        browser.set_window_size(1280, 900)
