"""Every HTML page the project writes or links, opened in real headless Chromium from file://:
markup carried by the data (reviews, labels, set-ups text) shows as text, none of it runs, and
the pages fetch nothing: no CDN script, style or font, not even the payload's own <img src=x>.

The data comes through the real ingest and validate stages (failing and passing rows alike);
the report's other inputs are stage outputs written as the stages write them (as in
report_data.py), so no model is trained here.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urldefrag

import numpy as np
import pandas as pd
import pytest
import yaml

from chromium import start_chromium
from helpers import Project
from report_data import CELLS, SEEDS, fake_cost, fake_search

# Each sets a flag if it ever runs; neither may.
IMAGE = '<img src=x onerror="window.__pwned=1">'
SCRIPT = "<script>window.__pwned=1</script>"
ESCAPE = " \x1b[2J\x07"  # a terminal's clear-screen and bell: written out on a page, as on a terminal
LABELS = ["ok", IMAGE]  # a declared label carrying markup: it passes validation
MAX_CHARS = 60


def payload_reviews() -> pd.DataFrame:
    """Passing and failing rows, both carrying markup in the text and in the label."""
    passing = [(f"a fine review {IMAGE}", IMAGE), (f"a good review {SCRIPT}", "ok")]
    passing += [(f"plain review {i} <br />", LABELS[i % 2]) for i in range(12)]
    failing = [
        (SCRIPT + " and much more" * 5, "ok"),  # longer than MAX_CHARS
        (f"broken \ufffd byte {IMAGE}", "ok"),  # undecodable bytes
        ("a review with an undeclared label", SCRIPT),
        (f"another {IMAGE}", IMAGE + " undeclared"),
    ]
    return pd.DataFrame(passing + failing, columns=["review", "score"])


def validated_project(root: Path) -> Project:
    project = Project(root)
    project.write("reviews.csv", payload_reviews())
    project.params(
        {
            "reviews": {
                "kind": "text",
                "source": "reviews.csv",
                "columns": {"text": "review", "label": "score"},
                "labels": LABELS,
                "max_chars": MAX_CHARS,
                "max_quarantine_fraction": 1.0,
            }
        }
    )
    for stage in ("ingest", "validate"):
        result = project.run(stage, "reviews")
        assert result.exit_code == 0, result.output
    quarantined = project.read("quarantine", "reviews")
    assert len(quarantined) == 4, quarantined  # the failing rows did fail: their pages show them
    return project


def write_evaluation(root: Path) -> None:
    """reports/eval, search and train outputs for `reviews`, in the shape the stages write them:
    markup in the labels and in the test examples the cells disagree on."""
    from seqbench.kinds.classify import ClassifierScorer
    from seqbench.stages.evaluate import assemble

    labels = np.array([0, 1] * 10)
    meta = {"task": "classify", "labels": LABELS, "sizes": {"train": 40, "val": 10, "test": 20}}
    right = np.eye(2)[labels] * 0.8 + 0.1
    outputs = {**{("lstm", s): right.copy() for s in SEEDS}, **{("gru", s): right[:, ::-1].copy() for s in SEEDS}}
    result, predictions = assemble(
        "reviews",
        "text",
        meta,
        ClassifierScorer({"labels": labels, "idx_test": np.arange(20)}, meta),
        outputs,
        {"majority": np.full((20, 2), 0.5)},
        CELLS,
        SEEDS,
        {"name": "majority", "metric": "macro_f1", "validation_scores": {"majority": 0.33}},
        (0.01, False),
    )
    predictions.insert(0, "example", [SCRIPT + ESCAPE, IMAGE] + [f"review {i}" for i in range(18)])
    result["cost"] = fake_cost()
    for folder in ("eval/reviews", "search", "train/reviews", "setups"):
        (root / "reports" / folder).mkdir(parents=True, exist_ok=True)
    (root / "reports/eval/reviews.json").write_text(json.dumps(result, default=str))
    predictions.to_csv(root / "reports/eval/reviews/predictions.csv", index=False)
    (root / "reports/search/reviews.json").write_text(json.dumps(fake_search("reviews")))
    pd.DataFrame(
        [
            {"cell": c, "seed": s, "epoch": e, "train_loss": 1 / e, "val_loss": 1 / e, "seconds": 0.1}
            for c in CELLS
            for s in SEEDS
            for e in range(1, 4)
        ]
    ).to_csv(root / "reports/train/reviews/learning_curves.csv", index=False)
    setups = {
        "metric": "macro_f1",
        "measured": SCRIPT,
        "setups": [{"setup": IMAGE, "changes": {"note": SCRIPT}, "scores": {"lstm": 0.7, "gru": 0.6}}],
    }
    (root / "reports/setups/reviews.yaml").write_text(yaml.safe_dump(setups))


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    """The validation page and the report of a project whose data carries markup."""
    from seqbench.stages.report import render_report

    root = tmp_path_factory.mktemp("payload-project")
    project = validated_project(root)
    write_evaluation(root)
    return {
        "validation": project.root / "reports/validation/reviews/index.html",
        "report": render_report(project.root / "params.yaml"),
    }


@pytest.fixture(scope="module")
def chromium():
    """Chromium keeping its DevTools network events, to see every request a page makes."""
    driver = start_chromium({"performance": "ALL"})
    yield driver
    driver.quit()


def requests_made(driver) -> list[str]:
    """The URLs of every request since the log was last read (Network.requestWillBeSent)."""
    messages = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    return [m["params"]["request"]["url"] for m in messages if m["method"] == "Network.requestWillBeSent"]


def visit(driver, url: str) -> dict:
    """Open `url` and return what the page did: requests, console errors, flags, text, links."""
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("performance"), driver.get_log("browser")  # start from empty logs
    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    try:
        alert = driver.switch_to.alert.text
    except NoAlertPresentException:
        alert = None
    return {
        "alert": alert,
        "pwned": driver.execute_script("return typeof window.__pwned"),
        "title": driver.title,
        "text": driver.execute_script("return document.body.innerText"),
        "resources": driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)"),
        "requests": requests_made(driver),
        "errors": [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"],
        "csp": driver.execute_script(
            "const m = document.querySelector('meta[http-equiv=\"Content-Security-Policy\"]'); return m && m.content"
        ),
        "links": driver.execute_script("return Array.from(document.querySelectorAll('a[href]'), a => a.href)"),
    }


def local_pages(links: list[str]) -> set[str]:
    """The local .html pages among `links`, without their #fragment."""
    found = {urldefrag(link).url for link in links}
    return {url for url in found if url.startswith("file:") and url.endswith(".html")}


def crawl(driver, start: list[Path]) -> dict[str, dict]:
    """Every page reachable from `start` through links to local .html files -> what it did."""
    queue, seen = [p.resolve().as_uri() for p in start], {}
    while queue:
        url = queue.pop()
        if url not in seen:
            seen[url] = visit(driver, url)
            queue.extend(local_pages(seen[url]["links"]) - set(seen))
    return seen


def test_every_page_shows_data_as_text_runs_none_of_it_and_fetches_nothing(pages, chromium):
    visited = crawl(chromium, [pages["report"]])
    assert pages["validation"].resolve().as_uri() in visited, "the report links the validation page"
    for url, page in visited.items():
        assert page["alert"] is None and page["pwned"] == "undefined" and page["title"] != "pwned", url
        fetched = [u for u in page["requests"] if urldefrag(u).url != url and not u.startswith("data:")]
        assert fetched == [], f"{url} fetched {fetched}"
        assert page["resources"] == [], url
        assert page["errors"] == [], url  # e.g. a script or image refused by the page's policy
        assert page["csp"] and "default-src 'none'" in page["csp"], url


# Where each page shows data-derived text: every place must show the markup as text.
SHOWN = [
    ("validation", "#samples-text_within_length_cap", [SCRIPT]),
    ("validation", "#samples-text_valid_utf8", [IMAGE]),
    ("validation", "#samples-label_in_declared_set", [SCRIPT]),
    ("validation", "#class-balance", [IMAGE]),
    ("validation", "#checks-table", ['["ok", "<img src=x onerror=']),  # label_in_declared_set's value_set, as JSON
    ("report", "#reviews table.examples", [SCRIPT, IMAGE, "\\x1b[2J\\x07"]),
    ("report", "#reviews-setups", [SCRIPT, IMAGE]),
]


@pytest.mark.parametrize(("name", "selector", "payloads"), SHOWN)
def test_markup_in_the_data_is_visible_as_text(pages, chromium, name, selector, payloads):
    chromium.get(pages[name].resolve().as_uri())
    text = chromium.find_element("css selector", selector).text
    for payload in payloads:
        assert payload in text, f"{payload!r} is not shown as text in {selector} of the {name} page"


def test_the_validation_page_shows_each_expectation_and_the_failing_rows(pages, chromium):
    page = visit(chromium, pages["validation"].resolve().as_uri())
    text = page["text"]
    for check in ("text_within_length_cap", "text_valid_utf8", "label_in_declared_set", "has_rows"):
        assert check in text
    assert "expect_column_values_to_be_in_set" in text and "value_set" in text
    assert "4 quarantined" in text and "14 validated" in text
    assert "\ufffd" in text  # the failing value itself, as a sample


def test_a_failed_validation_still_writes_its_page(project, chromium):
    """The page matters most when the stage stops: it names the failed check and shows its rows."""
    from helpers import STOCK, stock_frame

    project.write("prices.csv", pd.concat([stock_frame(5, start="2020-01-01"), stock_frame(5, start="2020-03-01")]))
    project.params({"s": {**STOCK, "max_gap_days": 10}})
    assert project.run("ingest", "s").exit_code == 0
    assert project.run("validate", "s").exit_code == 1
    page = visit(chromium, (project.root / "reports/validation/s/index.html").as_uri())
    assert "Great Expectations: failed" in page["text"] and "was not written" in page["text"]
    gap = chromium.find_element("css selector", "#samples-max_gap_days").text
    assert "2020-03-02" in gap and "55" in gap  # the row after the gap, and its gap in days


def test_no_template_marks_text_safe():
    """Only code makes HTML (figures.fragment's Markup); a template's |safe could pass data through."""
    import re

    templates = Path(__file__).resolve().parents[2] / "src/seqbench/stages/report/templates"
    for template in templates.glob("*.j2"):
        assert not re.search(r"\|\s*safe\b", template.read_text()), f"{template.name} uses |safe"
