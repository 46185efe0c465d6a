"""The HTML report: rendered from evaluation files, opened in real headless Chromium from file://."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chromium import check_in_browser, open_report
from seqbench.kinds.classify import ClassifierScorer
from seqbench.kinds.stock import ForecastScorer
from seqbench.stages.evaluate import assemble

SCRIPT = "<script>alert(1)</script>"
IMAGE = "<img src=x onerror=\"document.title='pwned'\">"
CELLS, SEEDS = ["lstm", "gru"], [0, 1]


# Per cell: (its multiply-adds per step, the kernel its training step ran, the kernels of the
# timed batch 1 and batch 256). The LSTM fused throughout; the GRU's loop; on a CPU.
WORK = {
    "lstm": (4 * 33 * (4 + 33), "oneDNN fused LSTM", ("oneDNN fused LSTM", "oneDNN fused LSTM")),
    "gru": (3 * 38 * (4 + 38), "torch step-by-step loop", ("torch step-by-step loop", "torch step-by-step loop")),
}
LOOKBACK = 30


def fake_cost() -> dict:
    """The shape evaluate.costs() writes; the real measurement is tested with real runs."""
    ci = {"mean": 1.0, "low": 0.5, "high": 1.5, "n": 2}
    found = {}
    for cell in CELLS:
        per_step, kernel, (kernel_1, kernel_256) = WORK[cell]
        found[cell] = {
            "trainable_parameters": 1234,
            "checkpoint_bytes": 4096,
            "device": "cpu",
            "epochs_run": ci,
            "best_epoch": ci,
            "seconds_to_best": ci,
            "train_seconds": ci,
            "train_samples_per_second": ci,
            "multiply_adds": {
                "per_step": per_step,
                "per_sequence": per_step * LOOKBACK,
                "sequence_length": float(LOOKBACK),
                "sequence_length_from": "lookback",
                "counts": "recurrent weight multiply-adds",
            },
            "kernel": {"name": kernel, "packed": False, "device": "cpu", "observed": True},
            "latency": {
                "batch_1": {"seconds_per_sample": 2e-4, "batch": 1, "kernel": kernel_1, "packed": False},
                "batch_256": {"seconds_per_sample": 1e-5, "batch": 256, "kernel": kernel_256, "packed": False},
            },
            "peak_memory": {"peak_bytes": 2**20, "measure": "CPU peak resident growth"},
        }
    return found


# A search file's trials per cell: (validation loss, pruned?), in trial order.
# lstm's trial 4 was pruned at a loss below every complete trial's: the best so far must ignore it.
TRIALS = {
    "lstm": [(0.74, False), (0.9, True), (0.71, False), (0.8, False), (0.65, True), (0.70, False)],
    "gru": [(0.78, False), (0.69, False), (0.88, True), (0.72, False), (0.75, False), (0.73, False)],
}
CHOSEN = {
    "lstm": {"hidden_size": 33, "parameters": 4987, "wall_seconds": 41.2},
    "gru": {"hidden_size": 38, "parameters": 4990, "wall_seconds": 38.7},
}


def fake_search(name: str, searched: bool = True) -> dict:
    """The shape the search@<dataset> stage writes to reports/search/<dataset>.json; data-derived
    text (a trial's parameter, a configured value) carries markup that must stay inert."""
    space = {"learning_rate": {"low": 0.0001, "high": 0.01, "log": True}, "layers": [1, 2], "param_budget": 5000}
    cells = {}
    for cell, chosen in CHOSEN.items():
        trials = (
            [
                {
                    "number": i,
                    "state": "pruned" if pruned else "complete",
                    "value": value,
                    "params": {"learning_rate": 0.001 * (i + 1), "layers": 1 + i % 2, "note": IMAGE},
                    "hidden_size": chosen["hidden_size"],
                    "parameters": chosen["parameters"],
                    "epochs": 3 if pruned else 12,
                    "seconds": 1.5,
                    "val_losses": [value + 0.1, value],
                }
                for i, (value, pruned) in enumerate(TRIALS[cell])
            ]
            if searched
            else []
        )
        best = min((t for t in trials if t["state"] == "complete"), key=lambda t: t["value"], default=None)
        config = {
            "max_epochs": 30,
            "patience": 5,
            "batch_size": 128,
            "learning_rate": 0.001,
            "layers": 1,
            "hidden_size": chosen["hidden_size"],
            "param_budget": 5000,
            "pooling": SCRIPT,
            "bidirectional": False,
            "size_match": "params",
        }
        cells[cell] = {
            "config": config,
            "parameters": chosen["parameters"],
            "best_trial": best and best["number"],
            "best_value": best and best["value"],
            "wall_seconds": chosen["wall_seconds"] if searched else 0,
            "trials": trials,
        }
    return {
        "dataset": name,
        "trials": len(TRIALS["lstm"]) if searched else 0,
        "size_match": "params",
        "sampler": {"name": "TPESampler", "seed": 0, "startup_trials": 4},
        "pruner": {"name": "MedianPruner", "startup_trials": 2, "warmup_epochs": 3} if searched else None,
        "space": space,
        "cells": cells,
    }


def write_dataset(
    root: Path, name: str, result: dict, predictions: pd.DataFrame, columns=("close",), searched: bool = True
) -> None:
    result["cost"] = fake_cost()
    (root / "reports/search").mkdir(parents=True, exist_ok=True)
    (root / "reports/search" / f"{name}.json").write_text(json.dumps(fake_search(name, searched)))
    (root / "reports/eval" / name).mkdir(parents=True)
    (root / "reports/eval" / f"{name}.json").write_text(json.dumps(result, default=str))
    predictions.to_csv(root / "reports/eval" / name / "predictions.csv", index=False)
    curves = pd.DataFrame(
        [
            {"cell": c, "seed": s, "epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e + s / 100, "seconds": 0.1}
            for c in CELLS
            for s in SEEDS
            for e in range(1, 6)
        ]
    )
    (root / "reports/train" / name).mkdir(parents=True)
    curves.to_csv(root / "reports/train" / name / "learning_curves.csv", index=False)
    docs = root / "reports/validation" / name
    docs.mkdir(parents=True)
    (docs / "index.html").write_text("<html><body>Data Docs</body></html>")
    validation = {
        "success": True,
        "rows_validated": 100,
        "rows_quarantined": 1,
        "quarantine_fraction": 0.01,
        "checks": [{"check": f"{columns[0]}_not_null", "level": "row", "success": False, "unexpected_count": 1}],
    }
    (root / "reports/validation" / f"{name}.json").write_text(json.dumps(validation))


def stock_evaluation(rng) -> tuple[dict, pd.DataFrame]:
    n = 120
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n + 1)))
    target = np.diff(np.log(close))
    arrays = {
        "target": np.append(target, np.nan).astype("float32"),
        "close": close,
        "date": pd.date_range("2020-01-01", periods=n + 1).to_numpy().astype("int64"),
        "symbol": np.array(["TOY"] * (n + 1)),
        "ends_train": np.arange(0, 80),
        "ends_test": np.arange(80, n),
    }
    meta = {
        "task": "forecast",
        "target_mean": 0.0,
        "target_std": 1.0,
        "horizon": 1,
        "sizes": {"train": 80, "val": 0, "test": 40},
    }
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
    result, predictions = assemble(
        "reviews", "text", meta, ClassifierScorer(arrays, meta), outputs, baselines, CELLS, SEEDS
    )
    examples = [SCRIPT, IMAGE] + [f"review {i}" for i in range(38)]
    predictions.insert(0, "example", examples)
    return result, predictions


def report_project(root: Path) -> Path:
    """A project with two datasets' stage outputs: prices searched, reviews with no search."""
    import yaml

    params = {
        "datasets": {
            "prices": {"kind": "stock", "source": "prices.csv"},
            "reviews": {"kind": "text", "source": "reviews.csv", "labels": ["<b>great</b>", "other"]},
        },
        "train": {"threads": 2},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    rng = np.random.default_rng(0)
    write_dataset(root, "prices", *stock_evaluation(rng))
    write_dataset(root, "reviews", *text_evaluation(rng), columns=("text",), searched=False)
    (root / "reports/setups").mkdir(parents=True, exist_ok=True)
    (root / "reports/setups/reviews.yaml").write_text(yaml.safe_dump(SETUPS, sort_keys=False))
    return root / "params.yaml"


# A record of set-ups tried on reviews (reports/setups/reviews.yaml); its text stays inert.
SETUPS = {
    "metric": "macro_f1",
    "measured": "today",
    "setups": [
        {
            "setup": f"learned {SCRIPT}",
            "changes": {"embeddings": "learned", "train": {"param_budget": 60000}},
            "scores": {"lstm": 0.743, "gru": 0.724, "tfidf_logreg": 0.789},
        },
        {"setup": "frozen", "changes": {"embeddings_trainable": False}, "scores": {"lstm": 0.719, "gru": 0.709}},
    ],
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    from seqbench.stages.report import render_report

    return render_report(report_project(tmp_path_factory.mktemp("report-project")))


def evaluation(rendered: Path, name: str) -> dict:
    return json.loads((rendered.parent / "eval" / f"{name}.json").read_text())


def plot_data(browser, selector: str) -> list[dict]:
    """The traces of the Plotly figure under `selector`, as the page holds them (typed arrays as lists)."""
    return browser.execute_script(
        """
        const gd = document.querySelector(arguments[0] + ' .js-plotly-plot');
        const plain = v => (ArrayBuffer.isView(v) ? Array.from(v) : v);
        return gd.data.map(t => ({name: t.name, meta: t.meta ?? null, x: plain(t.x), y: plain(t.y),
                                  text: plain(t.text) ?? null, customdata: plain(t.customdata) ?? null,
                                  symbol: t.marker ? t.marker.symbol : null,
                                  plus: t.error_x ? plain(t.error_x.array) : null,
                                  minus: t.error_x ? plain(t.error_x.arrayminus) : null}));""",
        selector,
    )


def table_rows(browser, selector: str) -> dict:
    """First cell's text -> the other cells' texts, for each body row of the table under `selector`."""
    rows = browser.find_elements("css selector", f"{selector} tbody tr")
    cells = [[td.text for td in row.find_elements("css selector", "td")] for row in rows]
    return {c[0]: c[1:] for c in cells}


def expected_forest(result: dict) -> dict:
    """Row label -> (difference, its CI, each seed's difference), written out independently of the report:
    GRU − LSTM as evaluation writes it (b − a), cell − baseline as the negated b − a."""
    metric, seeds, models = result["comparisons"][0]["metric"], result["seeds"], result["models"]
    rows = {}
    for c in result["comparisons"]:
        a, b, effect = c["a"], c["b"], c["effect"]
        if models[b]["baseline"]:
            per_seed = [s[metric] - models[b]["scores"][metric] for s in models[a]["per_seed"]]
            rows[f"{a} − {b}"] = (-effect["difference"], (-effect["high"], -effect["low"]), dict(zip(seeds, per_seed)))
        else:
            by_seed = {name: dict(zip(seeds, [s[metric] for s in models[name]["per_seed"]])) for name in (a, b)}
            per_seed = {k: by_seed[b][k] - by_seed[a][k] for k in seeds}
            rows[f"{b} − {a}"] = (effect["difference"], (effect["low"], effect["high"]), per_seed)
    return rows


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
    mcnemar = lstm_vs_gru.get(
        "accuracy_test", lstm_vs_gru["test"]
    )  # beside the verdict's test, once that is macro-F1's
    assert mcnemar["only_a_correct"] == 40 and lstm_vs_gru["verdict"]["winner"] == "lstm"
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


def test_forest_plot_leads_the_summary(rendered):
    html = rendered.read_text(encoding="utf-8")
    forest = html.index('id="forest"')
    assert html.index('id="summary"') < forest < html.index('id="summary-table"') < html.index('<section id="prices"')


def test_forest_plot_has_a_row_per_dataset_and_comparison(rendered, browser):
    open_report(browser, rendered)
    traces = plot_data(browser, "#forest")
    for name in ("prices", "reviews"):
        expected = expected_forest(evaluation(rendered, name))
        assert len(expected) == 3  # gru − lstm, and each cell − the best baseline
        mean = next(t for t in traces if t["meta"] == name and t["name"].startswith("mean"))
        assert sorted(mean["y"]) == sorted(expected)
        for label, x, plus, minus in zip(mean["y"], mean["x"], mean["plus"], mean["minus"]):
            difference, (low, high), _ = expected[label]
            assert (
                x == pytest.approx(difference) and x - minus == pytest.approx(low) and x + plus == pytest.approx(high)
            )
        seeds = next(t for t in traces if t["meta"] == name and t["name"] == "one seed")
        found = {(y, seed): x for x, y, seed in zip(seeds["x"], seeds["y"], seeds["customdata"])}
        assert found == pytest.approx(
            {(label, seed): v for label, row in expected.items() for seed, v in row[2].items()}
        )
    # The reviews cells are perfect (lstm) and always wrong (gru): every sign is known.
    reviews = expected_forest(evaluation(rendered, "reviews"))
    assert reviews["gru − lstm"][0] < 0 and reviews["lstm − majority"][0] > 0 > reviews["gru − majority"][0]
    verdicts = browser.execute_script(
        "return document.querySelector('#forest .js-plotly-plot').layout.annotations.map(a => a.text)"
    )
    assert sum("lstm is better" in v for v in verdicts) >= 2 and any("no significant difference" in v for v in verdicts)
    top = "return document.querySelector(arguments[0]).getBoundingClientRect().top"
    forest, table, first_section = (
        browser.execute_script(top, s) for s in ("#forest", "#summary-table", "section#prices")
    )
    assert forest < table < first_section


def test_each_seed_is_a_point_beside_the_mean(rendered, browser):
    open_report(browser, rendered)
    for name in ("prices", "reviews"):
        result = evaluation(rendered, name)
        metric = result["comparisons"][0]["metric"]
        traces = plot_data(browser, f"#{name}-seeds")
        for cell in CELLS:
            dots = next(t for t in traces if t["name"] == f"{cell}: each seed")
            assert dots["customdata"] == SEEDS
            assert dots["x"] == pytest.approx([s[metric] for s in result["models"][cell]["per_seed"]])
        # The summary table shows the same seeds as dots beside each mean [CI].
        circles = browser.find_elements("css selector", f"#summary-table tr:has(a[href='#{name}']) svg.dots circle")
        assert len(circles) == len(CELLS) * len(SEEDS)


def test_search_section_shows_trials_budget_and_chosen_configuration(rendered, browser):
    open_report(browser, rendered)
    traces = {t["name"]: t for t in plot_data(browser, "#prices-search")}
    for cell, trials in TRIALS.items():
        for state, pruned in (("complete", False), ("pruned", True)):
            assert traces[f"{cell} {state}"]["x"] == [i for i, (_, p) in enumerate(trials) if p == pruned]
        assert traces[f"{cell} pruned"]["symbol"] == "circle-open"
        # A trial's parameters reach Plotly escaped, so the hover shows the markup as text.
        assert all("&lt;img src=x" in text and "<img" not in text for text in traces[f"{cell} complete"]["text"])
        complete = [v if not p else None for v, p in trials]
        best = [min(v for v in complete[: i + 1] if v is not None) for i in range(len(trials))]
        assert traces[f"{cell} best so far"]["y"] == pytest.approx(best)
    outcome = table_rows(browser, "#prices-search table.search-outcome")
    assert outcome["trials run"] == ["6", "6"]
    assert outcome["pruned trials"] == ["2", "1"]
    assert outcome["search wall time"] == ["41.2 s", "38.7 s"]
    assert outcome["best trial"] == ["5", "1"]
    config = table_rows(browser, "#prices-search table.config")
    assert config["hidden size"][:2] == ["33", "38"] and config["parameters"][:2] == ["4,987", "4,990"]
    assert config["learning rate"][2] == "0.0001 to 0.01, log scale"
    assert config["pooling"][:2] == [SCRIPT, SCRIPT]  # shown as text
    cost = table_rows(browser, "#prices table.cost")
    assert [cost[c][0] for c in CELLS] == ["33", "38"]


def test_cost_table_separates_the_cells_work_from_the_kernel_that_ran(rendered, browser):
    open_report(browser, rendered)
    header = [th.text for th in browser.find_elements("css selector", "#prices table.cost thead th")]
    cost = {cell: dict(zip(header[1:], row)) for cell, row in table_rows(browser, "#prices table.cost").items()}
    assert cost["lstm"]["cell multiply-adds per step"] == "4,884"  # 4 gates x 33 x (4 + 33)
    assert cost["gru"]["cell multiply-adds per step"] == "4,788"  # 3 gates x 38 x (4 + 38)
    assert cost["lstm"]["cell multiply-adds per sequence"] == f"{4884 * LOOKBACK:,}"
    assert cost["lstm"]["kernel, training step"] == "oneDNN fused LSTM"
    assert cost["gru"]["kernel, training step"] == "torch step-by-step loop"
    assert cost["gru"]["kernel, inference"] == "torch step-by-step loop"
    assert cost["gru"]["latency per sample, batch 1"] == "200.0 µs"  # the measured times stay
    note = browser.find_element("css selector", "#prices p.cost-work").text
    assert "Per sequence: × 30 steps (lookback)" in note
    assert "cells trained on different kernels (lstm: oneDNN fused LSTM; gru: torch step-by-step loop)" in note


def test_no_search_says_so_and_still_shows_the_configuration(rendered, browser):
    open_report(browser, rendered)
    section = browser.find_element("css selector", "#reviews-search")
    assert "No search: the fixed configuration from params.yaml" in section.text
    assert section.find_elements("css selector", ".js-plotly-plot, table.search-outcome") == []
    config = table_rows(browser, "#reviews-search table.config")
    assert config["hidden size"][:2] == ["33", "38"] and config["parameters"][:2] == ["4,987", "4,990"]


def test_run_block_names_the_torch_threads_per_run(rendered, browser):
    open_report(browser, rendered)
    assert table_rows(browser, "#run-metadata")["torch threads per run"] == ["2"]  # params.yaml: train.threads


def test_a_missing_search_file_is_a_clean_error(tmp_path):
    from helpers import Project, assert_clean_failure

    params = report_project(tmp_path)
    (tmp_path / "reports/search/prices.json").unlink()
    result = Project(tmp_path).run("report")
    assert_clean_failure(result, "reports/search/prices.json: not found", "dvc repro search@prices")
    assert not (tmp_path / "reports/index.html").exists()
    assert params.exists()


def test_set_ups_tried_are_listed_under_their_dataset(rendered, browser):
    open_report(browser, rendered)
    rows = table_rows(browser, "#reviews-setups table.setups")
    assert rows[f"learned {SCRIPT}"] == ["embeddings: learned; train.param_budget: 60000", "0.743", "0.724", "0.789"]
    assert rows["frozen"] == ["embeddings_trainable: False", "0.719", "0.709", "—"]
    assert browser.find_elements("css selector", "#prices-setups") == []  # no record, no section


def test_a_malformed_set_ups_record_is_a_clean_error(tmp_path):
    from helpers import Project, assert_clean_failure

    report_project(tmp_path)
    (tmp_path / "reports/setups/reviews.yaml").write_text("setups: [{setup: x}]\n")
    result = Project(tmp_path).run("report")
    assert_clean_failure(result, "reports/setups/reviews.yaml: not a set-ups record")


def test_cross_validation_is_named_with_each_cells_epoch_count(tmp_path):
    from seqbench.stages.report import render_report

    params = report_project(tmp_path)
    search = fake_search("reviews")
    search["validation"] = {"method": "kfold", "folds": 5}
    for cell, epochs in zip(CELLS, (41, 57)):
        search["cells"][cell]["cross_validation"] = {"refit_epochs": epochs}
    (tmp_path / "reports/search/reviews.json").write_text(json.dumps(search))
    page = render_report(params).read_text()
    note = page[page.index('id="reviews-validation"') :]
    note = note[: note.index("</p>")]
    assert "stratified 5-fold cross-validation" in note and "(70)" in note  # train 60 + validation 10
    assert "lstm 41, gru 57 epochs" in note
