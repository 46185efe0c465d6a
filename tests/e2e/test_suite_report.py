"""The suite's part of the report in Chromium, from a suite JSON the stage writes from faked
evaluations: the summary sentence on top, the four answers, the Bayesian test's simplex, each
dataset's answers and effects, and the post-hoc table's Holm families."""

from __future__ import annotations

import json

import yaml

from chromium import ARTIFACTS, open_report
from unit.test_suite_stats import EIGHT, VIDEO, evaluation  # the same faked evaluations


def suite_page(root) -> str:
    """A page with suite `ucr`'s part of the report template only (the full page needs dataset
    sections), plotly.js inline as the report has it, from run_suite's JSON."""
    from plotly.offline import get_plotlyjs

    from seqbench.paths import Paths
    from seqbench.stages.report import figure_fragments
    from seqbench.stages.report.pages import content_security_policy, environment, scripts_in
    from seqbench.stages.report.sections import suite_section
    from seqbench.stages.suite import run_suite

    evaluations = {n: evaluation(a, b, t) for n, (a, b, t) in EIGHT.items()}
    params = {"datasets": {n: VIDEO for n in evaluations}, "suites": {"ucr": {"datasets": list(evaluations)}}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    (root / "reports" / "eval").mkdir(parents=True)
    for name, result in evaluations.items():
        (root / "reports" / "eval" / f"{name}.json").write_text(json.dumps(result))
    run_suite("ucr", root / "params.yaml")
    env = environment()
    source = env.loader.get_source(env, "index.html.j2")[0]
    start = source.index("{% for u in suites %}{% set r = u.result %}")
    end = source.index("</section>\n{% endfor %}", start) + len("</section>\n{% endfor %}")
    section = suite_section(Paths(root), "ucr")
    part = env.from_string(source[start:end]).render(suites=[section])
    # the report's policy: plotly.js and the figures' own scripts by hash, nothing fetched
    plotly_js = get_plotlyjs()
    scripts = [script for figure in figure_fragments([section]) for script in scripts_in(figure)]
    csp = content_security_policy([plotly_js, *scripts], images=True)
    head = (
        f'<meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{csp}"><script>{plotly_js}</script>'
    )
    return f"<!doctype html><html><head>{head}</head><body>{part}</body></html>"


def test_the_suite_section_shows_the_answers_the_bayesian_simplex_and_the_sentence(tmp_path, browser):
    page = tmp_path / "index.html"
    page.write_text(suite_page(tmp_path), encoding="utf-8")
    result = json.loads((tmp_path / "reports" / "suite" / "ucr.json").read_text())
    open_report(browser, page)
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    first = browser.find_element("css selector", "section#suite-ucr h2 + p")
    assert first.get_attribute("class") == "suite-summary" and first.text == result["summary"]
    counts = browser.find_element("css selector", "#suite-ucr .suite-counts").text
    assert "practically equivalent on 3" in counts and "undecided on 4" in counts and "GRU better on 1" in counts
    assert "tie" not in counts and "win" not in counts
    bayes = browser.find_element("css selector", "#suite-ucr .suite-bayes").text
    assert f"P(practically equivalent) = {result['bayesian']['p_equivalent']:.3g}" in bayes
    # the simplex: a ternary plot whose three regions hold the posterior draws
    assert browser.find_elements("css selector", "#suite-ucr-bayes .js-plotly-plot g.ternary")
    legend = browser.execute_script("return document.querySelector('#suite-ucr-bayes').textContent")
    assert "LSTM better: P = " in legend and "GRU better: P = " in legend
    points = browser.execute_script("return document.querySelectorAll('#suite-ucr-bayes path.point').length")
    assert points == len(result["bayesian"]["posterior_sample"])
    table = browser.find_element("css selector", "#suite-ucr table.suite-table").text
    assert "gru − lstm: 0.06 [0.05, 0.07]" in table  # h: GRU better, with its effect
    assert "lstm vs nn_dtw: undecided" in table
    cells = browser.find_elements("css selector", "#suite-ucr table.suite-table td.verdict.equivalent")
    assert len(cells) == 3
    families = browser.find_element("css selector", "#suite-ucr table.suite-posthoc").text
    assert "lstm vs majority trivial" in families and "lstm vs gru compared" in families
    assert browser.find_elements("css selector", "#suite-ucr-scatter .js-plotly-plot .main-svg")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.find_element("css selector", "#suite-ucr-bayes").screenshot(str(ARTIFACTS / "suite-bayes.png"))
    browser.find_element("css selector", "#suite-ucr-scatter").screenshot(str(ARTIFACTS / "suite-scatter.png"))
