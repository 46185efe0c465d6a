"""The HTML report: rendered from evaluation files, opened in real headless Chromium from file://."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from chromium import check_in_browser, open_report
from report_data import CELLS, LOOKBACK, SCRIPT, SEEDS, TRIALS, fake_search, report_project


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
    """Row label -> (difference, its CI, each seed's difference), written out independently of the
    report, in the metric's good direction (right of 0: the row's second model is better): "lstm vs
    gru" as evaluation's b − a (negated where lower is better), "baseline vs cell" as a − b."""
    from seqbench.metrics import HIGHER_IS_BETTER

    metric, seeds, models = result["comparisons"][0]["metric"], result["seeds"], result["models"]
    good = 1 if HIGHER_IS_BETTER[metric] else -1
    rows = {}
    for c in result["comparisons"]:
        a, b, effect = c["a"], c["b"], c["effect"]
        if models[b]["baseline"]:
            per_seed = [good * (s[metric] - models[b]["scores"][metric]) for s in models[a]["per_seed"]]
            ends = sorted((-good * effect["low"], -good * effect["high"]))
            rows[f"{b} vs {a}"] = (-good * effect["difference"], tuple(ends), dict(zip(seeds, per_seed)))
        else:
            by_seed = {name: dict(zip(seeds, [s[metric] for s in models[name]["per_seed"]])) for name in (a, b)}
            per_seed = {k: good * (by_seed[b][k] - by_seed[a][k]) for k in seeds}
            ends = sorted((good * effect["low"], good * effect["high"]))
            rows[f"{a} vs {b}"] = (good * effect["difference"], tuple(ends), per_seed)
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
    from helpers import assert_verdicts_agree

    result = json.loads((rendered.parent / "eval/reviews.json").read_text())
    lstm_vs_gru = result["comparisons"][0]
    mcnemar = lstm_vs_gru["beside"]["accuracy_test"]  # beside the verdict, on the seed ensembles
    assert mcnemar["only_a_correct"] == 40 and lstm_vs_gru["verdict"]["winner"] == "lstm"
    html = rendered.read_text(encoding="utf-8")
    assert "lstm is better" in html
    for name in ("prices", "reviews"):  # no row's interval, p and verdict disagree
        assert_verdicts_agree(evaluation(rendered, name))
    prices = evaluation(rendered, "prices")["comparisons"][0]["verdict"]
    assert prices["text"] in html and f"{prices['p_value']:.3g}" in html  # the verdict's own p is shown


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


def test_the_first_screen_gives_each_datasets_answer_in_one_sentence(rendered, browser):
    from seqbench.stages.report.sections import answer

    open_report(browser, rendered)  # 1280 x 900
    first_screen = browser.execute_script(
        "const box = document.querySelector('#answers').getBoundingClientRect();"
        "return box.bottom <= window.innerHeight ? document.querySelector('#answers').innerText : '';"
    )
    for name in ("prices", "reviews"):
        sentence = answer(evaluation(rendered, name))["sentence"]
        assert f"{name}: {sentence}" in first_screen
    # The reviews' LSTM is perfect and the GRU always wrong: the LSTM is recommended.
    assert answer(evaluation(rendered, "reviews"))["use"] == "lstm"


def test_the_recommendation_prefers_the_simpler_model_unless_a_cell_gives_a_reason():
    from report_data import stock_evaluation
    from seqbench.stages.report.sections import answer

    result, _ = stock_evaluation(np.random.default_rng(0))  # random forecasts: nothing beats ridge_ar
    assert answer(result)["use"] == "ridge_ar"
    result["did_not_learn"] = {"lstm": "x", "gru": "y"}
    for c in result["comparisons"]:
        c["verdict"] = {"answer": "void", "winner": None, "text": "void: lstm and gru did not learn"}
    assert answer(result)["use"] == "none (no cell learned)"


def test_the_summary_table_follows_the_answers_and_leads_the_plots(rendered):
    html = rendered.read_text(encoding="utf-8")
    table = html.index('id="summary-table"')
    assert html.index('id="answers"') < table < html.index('id="forest"') < html.index('<section id="prices"')


def test_forest_plot_has_a_row_per_dataset_and_comparison(rendered, browser):
    open_report(browser, rendered)
    traces = plot_data(browser, "#forest")
    for name in ("prices", "reviews"):
        expected = expected_forest(evaluation(rendered, name))
        assert len(expected) == 3  # lstm vs gru, and the best baseline vs each cell
        mean = next(t for t in traces if t["meta"] == name and t["name"].startswith("difference of the seed means"))
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
    # The reviews cells are perfect (lstm) and always wrong (gru): every side is known.
    reviews = expected_forest(evaluation(rendered, "reviews"))
    assert reviews["lstm vs gru"][0] < 0 and reviews["majority vs lstm"][0] > 0 > reviews["majority vs gru"][0]
    verdicts = browser.execute_script(
        "return document.querySelector('#forest .js-plotly-plot').layout.annotations.map(a => a.text)"
    )
    assert sum("lstm is better" in v for v in verdicts) >= 2
    prices = [c["verdict"]["text"] for c in evaluation(rendered, "prices")["comparisons"]]
    assert all(any(text in v for v in verdicts) for text in prices)
    # The ROPE is drawn as a band in each panel.
    shapes = browser.execute_script(
        "return document.querySelector('#forest .js-plotly-plot').layout.shapes.filter(s => s.type === 'rect').length"
    )
    assert shapes == 2
    top = "return document.querySelector(arguments[0]).getBoundingClientRect().top"
    forest, table, first_section = (
        browser.execute_script(top, s) for s in ("#forest", "#summary-table", "section#prices")
    )
    assert table < forest < first_section


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
    # A forecaster has no pooling, direction or token table; holdout validation has no folds.
    assert not {"pooling", "bidirectional", "embedding size", "folds"} & set(config)
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
    assert cost["gru"]["latency per sample, batch 1 (µs)"] == "200"  # the measured times stay, in one unit
    assert cost["gru"]["latency per sample, batch 256 (µs)"] == "10"
    # The last row: gru's time over lstm's under each time column (training, time to best, latencies).
    ratios = browser.execute_script(
        """const cells = [...document.querySelectorAll('#prices table.cost tr.ratio td')];
        const heads = [...document.querySelectorAll('#prices table.cost thead th')];
        return cells.filter(td => td.innerText).map(td => {
            const x = td.getBoundingClientRect().left;
            return [heads.find(th => Math.abs(th.getBoundingClientRect().left - x) < 1).innerText, td.innerText];
        });""",
    )
    assert ratios == [
        ["model", "gru ÷ lstm"],
        ["training time per run (s)", "1.0×"],
        ["time to best (s)", "1.0×"],
        ["latency per sample, batch 1 (µs)", "1.0×"],
        ["latency per sample, batch 256 (µs)", "1.0×"],
    ]
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
    # A text classifier's own settings apply: pooling (shown as text), direction, the learned token table.
    assert config["pooling"][:2] == [SCRIPT, SCRIPT]
    assert config["bidirectional"][:2] == ["false", "false"] and config["embedding size"][:2] == ["64", "64"]
    assert "folds" not in config


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


def test_cross_validation_is_named_with_each_cells_optimiser_steps(tmp_path):
    from seqbench.stages.report import render_report

    params = report_project(tmp_path)
    search = fake_search("reviews")
    search["validation"] = {"method": "kfold", "folds": 5}
    for cell, epochs in zip(CELLS, (41, 57)):
        search["cells"][cell]["cross_validation"] = {"refit_epochs": epochs, "refit_steps": 10 * epochs}
    (tmp_path / "reports/search/reviews.json").write_text(json.dumps(search))
    page = render_report(params).read_text()
    note = page[page.index('id="reviews-validation"') :]
    note = note[: note.index("</p>")]
    assert "stratified 5-fold cross-validation" in note and "(70)" in note  # train 60 + validation 10
    assert "lstm 410 steps, 41 fold epochs; gru 570 steps, 57 fold epochs" in note


# ---- a newcomer's first screen: the summary table, one reading direction, scroll cues ---------


def test_the_summary_table_gives_verdict_effect_holm_p_and_cost_ratio(rendered, browser):
    open_report(browser, rendered)
    header = [th.text.replace("\n", " ") for th in browser.find_elements("css selector", "#summary-table thead th")]
    rows = {name: dict(zip(header[1:], cells)) for name, cells in table_rows(browser, "#summary-table").items()}
    for name in ("prices", "reviews"):
        head = evaluation(rendered, name)["comparisons"][0]
        row = rows[name]
        assert row["metric"] == head["metric"]
        assert row["Holm p"] == f"{head['verdict']['p_value']:.3g}"  # the verdict's own p
        effect = head["effect"]
        interval = f"{effect['difference']:.3g} [{effect['low']:.3g}, {effect['high']:.3g}]"
        assert row["effect: b − a [95% CI]"].startswith(f"gru − lstm: {interval}")
        # Costs alike in the made-up data: both ratios 1.0x, each time in its one unit.
        assert row["cost: b's time ÷ a's"] == (
            "training: gru 1.0× lstm's time, same (lstm 1, gru 1 s per run)\n"
            "inference: gru 1.0× lstm's time, same (lstm 200, gru 200 µs per sample)"
        )
    assert rows["reviews"]["verdict"] == "lstm vs gru: A better (lstm)"
    assert rows["prices"]["verdict"].startswith("lstm vs gru: undecided")
    links = browser.find_elements("css selector", "#summary-table td.verdict a")
    assert [a.get_attribute("href").split("#")[-1] for a in links] == ["method", "method"]
    assert browser.find_element("css selector", "h2#method").text == "How the verdict is reached"


def test_the_cost_ratio_names_the_slower_cell_in_one_unit(tmp_path):
    from report_data import fake_cost, stock_evaluation
    from seqbench.stages.report.formatting import ratio_words
    from seqbench.stages.report.sections import cost_ratios, cost_table_ratios

    result, _ = stock_evaluation(np.random.default_rng(0))
    result["cost"] = fake_cost()
    result["cost"]["gru"]["train_seconds"] = {"mean": 19.0}  # lstm: 1.0 s
    result["cost"]["gru"]["latency"]["batch_1"]["seconds_per_sample"] = 1.6e-4  # lstm: 2e-4 s
    training, inference = (ratio_words(t) for t in cost_ratios(result, "lstm", "gru"))
    assert training == "training: gru 19× lstm's time, slower (lstm 1, gru 19 s per run)"
    assert inference == "inference: gru 0.80× lstm's time, faster (lstm 200, gru 160 µs per sample)"
    assert cost_table_ratios(result)["batch_1"] == pytest.approx(0.8)
    del result["cost"]
    assert cost_ratios(result, "lstm", "gru") == [] and cost_table_ratios(result) is None


def test_wide_tables_scroll_visibly(rendered, browser):
    open_report(browser, rendered)  # 1280 x 900: the cost table is wider than the page's 1100 px
    box = browser.execute_script(
        """const box = document.querySelector(arguments[0]).closest('.scroll');
        const style = getComputedStyle(box), hint = box.querySelector('.scroll-hint');
        return {overflow: style.overflowX, background: style.backgroundImage,
                wider: box.scrollWidth > box.clientWidth, right: box.getBoundingClientRect().right,
                hint: getComputedStyle(hint).display, text: hint.innerText};""",
        "#prices table.cost",
    )
    assert box["overflow"] == "auto" and box["wider"] and box["right"] <= 1280
    assert box["background"].count("gradient") == 4  # the edge shadows, the cue that more lies beyond
    assert box["hint"] == "block" and "scroll sideways" in box["text"]
    # A table that fits shows no hint.
    narrow = browser.execute_script(
        "const box = document.querySelector('#run-metadata').closest('.scroll');"
        "return getComputedStyle(box.querySelector('.scroll-hint')).display"
    )
    assert narrow == "none"


def test_every_forest_row_reads_the_same_way(rendered, browser):
    """Right of 0 the row's second model is better, for a higher-is-better metric (macro-F1) and a
    lower-is-better one (RMSE) alike; the axis says so with the cells' names; no SI prefixes."""
    from report_data import stock_evaluation
    from seqbench.stages.report.sections import forest_row

    open_report(browser, rendered)
    layout = browser.execute_script("return document.querySelector('#forest .js-plotly-plot').layout")
    titles = [layout[k]["title"]["text"] for k in sorted(layout) if k.startswith("xaxis")]
    assert len(titles) == 2 and all(t.startswith("← lstm better · gru better →") for t in titles)
    assert all(layout[k].get("tickformat") == "~g" for k in layout if k.startswith("xaxis"))
    # In the page: the reviews' winners, each on its own side.
    traces = plot_data(browser, "#forest")
    mean = next(t for t in traces if t["meta"] == "reviews" and t["name"].startswith("difference of the seed means"))
    x = dict(zip(mean["y"], mean["x"]))
    assert x["lstm vs gru"] < 0 and x["majority vs lstm"] > 0 and x["majority vs gru"] < 0
    # For either kind of metric, b better plots on the right, a better on the left.
    result, _ = stock_evaluation(np.random.default_rng(0))
    for metric, b_better_difference in (("rmse", -0.5), ("macro_f1", 0.5)):
        for answer, difference in (("b_better", b_better_difference), ("a_better", -b_better_difference)):
            comparison = {
                "a": "lstm",
                "b": "gru",
                "metric": metric,
                "effect": {"difference": difference, "low": difference - 0.1, "high": difference + 0.1},
                "verdict": {"answer": answer},
            }
            row = forest_row(result, comparison)
            assert (row["difference"] > 0) == (answer == "b_better"), (metric, answer)
            assert row["low"] < row["difference"] < row["high"] and row["label"] == "lstm vs gru"


def test_forest_winners_sit_on_their_side_in_every_dataset(rendered):
    from seqbench.stages.report.sections import forest_panel

    for name in ("prices", "reviews"):
        for row in forest_panel(name, evaluation(rendered, name))["rows"]:
            winner = row["verdict"].get("winner")
            if winner:  # the interval lies beyond the ROPE on the winner's side
                assert (row["low"] > 0) if winner == row["second"] else (row["high"] < 0), row["label"]


def test_residuals_and_forecasts_are_drawn_one_model_apart(rendered, browser):
    open_report(browser, rendered)
    result = evaluation(rendered, "prices")
    models = result["cells"] + result["baselines"]
    boxes = browser.execute_script(
        "return document.querySelector('#prices-residuals .js-plotly-plot').data.map(t => [t.type, t.name])"
    )
    assert boxes == [["box", m] for m in models]
    panels = browser.execute_script(
        "return document.querySelector('#prices-forecast .js-plotly-plot').data.map(t => [t.name, t.xaxis, t.yaxis])"
    )
    forecasts = {name: axes for name, *axes in panels if name != "actual"}
    assert sorted(forecasts) == sorted(models) and len({tuple(a) for a in forecasts.values()}) == len(models)
    actual = [tuple(axes) for name, *axes in panels if name == "actual"]
    assert sorted(actual) == sorted(tuple(a) for a in forecasts.values())  # the actual series in every panel


def test_disagreements_show_the_class_names(rendered, browser):
    open_report(browser, rendered)
    labels = set(evaluation(rendered, "reviews")["labels"])
    header = [th.text for th in browser.find_elements("css selector", "#reviews table.examples thead th")]
    assert header == ["example", "actual class", "lstm's class", "gru's class"]
    rows = table_rows(browser, "#reviews table.examples")
    assert rows and all(set(cells) <= labels for cells in rows.values())


def test_class_names_that_look_like_numbers_stay_names(tmp_path):
    from seqbench.stages.report.sections import disagreements, read_predictions

    path = tmp_path / "predictions.csv"
    path.write_text("example,actual,lstm,gru,majority\nclip 1,01,01,02,01\nclip 2,02,02,02,01\n")
    result = {"labels": ["01", "02"], "cells": ["lstm", "gru"], "baselines": ["majority"]}
    found = disagreements(read_predictions(path, result), result)
    assert found == [{"example": "clip 1", "actual": "01", "lstm": "01", "gru": "02"}]


def test_label_names_name_the_classes_in_every_table(tmp_path):
    from seqbench.stages.report.sections import disagreements, named_classes, read_predictions

    path = tmp_path / "predictions.csv"
    path.write_text("example,actual,lstm,gru,majority\nclip 1,1,1,2,1\nclip 2,2,2,2,1\n")
    result = {"labels": ["1", "2"], "cells": ["lstm", "gru"], "baselines": ["majority"]}
    named, predictions = named_classes(result, read_predictions(path, result), {"1": "gun", "2": "no gun"})
    assert named["labels"] == ["gun", "no gun"] and result["labels"] == ["1", "2"]  # the figures' classes
    found = disagreements(predictions, named)
    assert found == [{"example": "clip 1", "actual": "gun", "lstm": "gun", "gru": "no gun"}]


def test_label_names_must_name_declared_labels():
    import pytest

    from helpers import VIDEO
    from seqbench.config import parse_params
    from seqbench.errors import ConfigError

    with pytest.raises(ConfigError, match="label_names names 3, not among the labels 1, 2"):
        parse_params({"datasets": {"v": {**VIDEO, "labels": [1, 2], "label_names": {1: "gun", 3: "typo"}}}})
    named = parse_params({"datasets": {"v": {**VIDEO, "label_names": {1: "gun"}}}}).dataset("v")
    assert named.label_names == {"1": "gun"}  # YAML's int keys read as the labels they name


def test_settings_apply_by_what_the_dataset_is():
    from types import SimpleNamespace

    from seqbench.stages.report.sections import setting_applies

    forecast, classify = {"task": "forecast"}, {"task": "classify"}
    holdout, kfold = {"validation": "holdout"}, {"validation": "kfold"}
    learned, glove = SimpleNamespace(embeddings="learned"), SimpleNamespace(embeddings="glove-6b-50d")
    assert not any(setting_applies(k, holdout, forecast) for k in ("pooling", "bidirectional", "embedding_size"))
    assert setting_applies("pooling", holdout, classify) and setting_applies("bidirectional", holdout, classify)
    assert setting_applies("embedding_size", holdout, classify, learned)
    assert not setting_applies("embedding_size", holdout, classify, glove)  # the vectors fix their width
    assert not setting_applies("embedding_size", holdout, classify)  # clips: no token table
    assert setting_applies("folds", kfold, classify) and not setting_applies("folds", holdout, classify)
    assert setting_applies("learning_rate", holdout, forecast)


def test_each_section_links_its_evaluation_and_predictions(rendered, browser):
    from seqbench.stages.report.sections import link

    open_report(browser, rendered)
    for name in ("prices", "reviews"):
        hrefs = [a.get_attribute("href") for a in browser.find_elements("css selector", f"section#{name} p.files a")]
        assert [h.rsplit("/reports/", 1)[1] for h in hrefs] == [f"eval/{name}.json", f"eval/{name}/predictions.csv"]
        assert all(Path(h.removeprefix("file://")).exists() for h in hrefs)
    html = rendered.read_text(encoding="utf-8")
    assert 'href="eval/prices.json"' in html and 'href="eval/prices/predictions.csv"' in html  # relative
    assert link(rendered.parent / "eval/missing.json", rendered.parent) is None  # no file, no link


def test_without_measured_times_the_report_still_renders_and_says_nothing_it_did_not_measure(tmp_path):
    """A workspace that pulled its results (reports/eval) but not this machine's times
    (reports/timings, git-ignored and not a DVC output) renders with dashes for every time."""
    import json

    from report_data import report_project
    from seqbench.stages.report import render_report
    from seqbench.timings import split

    params = report_project(tmp_path)
    for path in (tmp_path / "reports/eval").glob("*.json"):
        path.write_text(json.dumps(split(json.loads(path.read_text()))[0]))  # the result alone
    html = render_report(params, tmp_path / "out/index.html").read_text()
    answers = html[html.index('<div id="answers">') : html.index("</div>", html.index('<div id="answers">'))]
    assert "trains" not in answers  # no time ratio in the answer sentences
    assert "× lstm&#39;s time" not in html and "× lstm's time" not in html  # none in the summary's cost column
    assert json.loads((tmp_path / "out/answers.json").read_text())["prices"]["comparisons"]
