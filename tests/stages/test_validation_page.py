"""The validation page shows what failed: the failing column first, the source's own text of a
value that did not parse, no helper columns, "skipped" for a column the data lacks, no sentinel
numbers, a headline that matches the worst check, and a way back to the report."""

import json
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from helpers import STOCK, sha256, stock_frame
from seqbench.stages.report.validation import headline, render_validation_page


class Tables(HTMLParser):
    """Each <table id=...> of a page as {"header": [...], "rows": [[cell text, ...], ...]}."""

    def __init__(self, page: str):
        super().__init__()
        self.tables, self.links, self.current, self.cell = {}, [], None, None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a":
            self.links.append(attrs.get("href"))
        if tag == "table" and attrs.get("id"):
            self.current = self.tables.setdefault(attrs["id"], {"header": [], "rows": []})
        elif tag == "tr" and self.current is not None:
            self.row = []
        elif tag in ("td", "th") and self.current is not None:
            self.cell = []

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append("".join(self.cell))
            self.cell = None
        elif tag == "tr" and self.current is not None:
            kind = "header" if not self.current["header"] else "rows"
            if kind == "header":
                self.current["header"] = self.row
            else:
                self.current["rows"].append(self.row)
        elif tag == "table":
            self.current = None


def validated(project, frame, name="s", **cfg):
    project.write("prices.csv", frame)
    project.params({name: {**STOCK, **cfg}})
    assert project.run("ingest", name).exit_code == 0
    result = project.run("validate", name)
    report = json.loads((project.root / f"reports/validation/{name}.json").read_text())
    page = (project.root / f"reports/validation/{name}/index.html").read_text()
    return result, report, page


def check(report, name) -> dict:
    return next(c for c in report["checks"] if c["check"] == name)


def text_prices(days=10):
    """Prices as a CSV holds them when a few are written with a currency sign."""
    frame = stock_frame(days)
    frame["close"] = frame["close"].astype(object)
    frame.loc[3, "close"] = "$101.59"
    return frame


def test_a_failed_value_comes_first_with_its_source_text(project):
    result, report, page = validated(project, text_prices())
    assert result.exit_code == 0, result.output

    (sample,) = check(report, "close_present")["sample_rows"]
    assert list(sample)[:2] == ["row", "close"], "the failing column right after the row number"
    assert sample["close"] == 'null (source: "$101.59")'
    table = Tables(page).tables["samples-close_present"]
    assert table["header"][:2] == ["row", "close"]
    assert table["rows"][0][1] == 'null (source: "$101.59")'


def test_a_pair_check_shows_both_of_its_columns_first(project):
    frame = stock_frame(10)
    frame.loc[2, "high"] = 1.0  # below low, open and close
    _, report, _ = validated(project, frame)
    (sample,) = check(report, "low_le_high")["sample_rows"]
    assert list(sample)[1:3] == ["high", "low"]


def test_the_source_text_is_kept_beside_the_raw_table_not_in_it(project):
    _, _, _ = validated(project, text_prices())
    raw = project.read("raw", "s")
    assert raw["close"].isna().sum() == 1 and raw["close"].dtype == "float64", "the table keeps its null"
    manifest = json.loads((project.root / "data/raw/s.manifest.json").read_text())
    assert manifest["unparsed"] == {"close": {"count": 1, "examples": [[3, "$101.59"]]}}


def test_source_text_is_capped_per_column(project):
    frame = stock_frame(60)
    frame["close"] = frame["close"].astype(object)
    frame.loc[range(0, 60, 2), "close"] = "n/a?"  # 30 unparseable cells, under the 50% error bound
    validated(project, frame)
    manifest = json.loads((project.root / "data/raw/s.manifest.json").read_text())
    assert manifest["unparsed"]["close"]["count"] == 30
    assert len(manifest["unparsed"]["close"]["examples"]) == 20


def test_a_date_that_did_not_parse_shows_its_text_and_the_source_is_untouched(project):
    frame = stock_frame(10)
    frame.loc[4, "date"] = "31/02/2020"
    source = project.write("prices.csv", frame)
    before = sha256(source)
    _, report, _ = validated(project, frame)
    (sample,) = check(report, "date_parses")["sample_rows"]
    assert list(sample)[1] == "date" and sample["date"] == 'null (source: "31/02/2020")'
    assert sha256(source) == before


def test_the_error_message_shows_the_source_text_in_words_not_a_dict(project):
    result, _, _ = validated(project, text_prices(), max_quarantine_fraction=0.0)
    assert result.exit_code == 1
    assert 'row 3: close=null (source: "$101.59"), date=' in result.output
    assert "{'row'" not in result.output


def test_helper_columns_are_not_shown_as_data(project):
    frame = pd.concat([stock_frame(5, start="2020-01-01"), stock_frame(5, start="2020-03-01")])
    frame.iloc[3, frame.columns.get_loc("date")] = frame.iloc[2]["date"]  # a repeated date
    result, report, page = validated(project, frame, max_gap_days=10)
    assert result.exit_code == 1  # the gap stops the stage

    for name in ("max_gap_days", "date_increasing"):
        for sample in check(report, name)["sample_rows"]:
            assert not [key for key in sample if key.startswith("_")], sample
            assert list(sample)[1:4] == ["computed", "date", "symbol"], "why, then the columns it is computed from"
    (gap,) = check(report, "max_gap_days")["sample_rows"]
    assert gap["computed"] == "days since the previous date of the same symbol: 55"
    tables = Tables(page).tables
    for table in ("samples-max_gap_days", "samples-date_increasing"):
        assert not [h for h in tables[table]["header"] if h.startswith("_")]
    assert "computed" in page and "not a column of the data" in page


def test_checks_of_a_column_the_data_lacks_say_skipped(project):
    frame = stock_frame(10).drop(columns=["open", "high", "low"])
    result, report, page = validated(project, frame)
    assert result.exit_code == 0, result.output

    skipped = check(report, "open_finite_positive")
    assert skipped["status"] == "skipped" and skipped["skipped_because"] == "column open absent (no value in the data)"
    assert check(report, "low_le_high")["skipped_because"] == "columns high, low absent (no value in the data)"
    assert check(report, "close_finite_positive")["status"] == "passed"
    assert check(report, "volume_finite_non_negative")["status"] == "passed"
    rows = {r[0]: r for r in Tables(page).tables["checks-table"]["rows"]}
    assert rows["open_finite_positive"][4] == "skipped: column open absent (no value in the data)"
    assert rows["close_finite_positive"][4] == "passed"


def test_a_column_without_values_still_fails_the_check_that_it_be_present(project):
    frame = stock_frame(10).assign(close=np.nan, open=100.0, high=102.0, low=99.0)
    frame.loc[0, "close"] = 100.0  # one value: ingest reads a number column
    _, report, _ = validated(project, frame)
    assert check(report, "close_present")["status"] == "failed"


def test_no_sentinel_number_is_printed(project):
    _, report, page = validated(project, stock_frame(10))
    assert check(report, "close_finite_positive")["kwargs"]["max_value"] > 1e308  # the sentinel is there ...
    assert "1.797" not in page and "e+308" not in page and "e308" not in page  # ... and not shown
    rows = {r[0]: r for r in Tables(page).tables["checks-table"]["rows"]}
    assert "max_value: no upper bound" in rows["close_finite_positive"][3]


def test_the_page_links_back_to_the_report(project):
    _, _, page = validated(project, stock_frame(10))
    assert "../../index.html" in Tables(page).links
    here = project.root / "reports/validation/s/index.html"
    assert (here.parent / "../../index.html").resolve() == (project.root / "reports/index.html").resolve()


def test_the_headline_of_a_page_with_a_quarantined_row_is_not_a_bare_passed(project):
    _, _, page = validated(project, text_prices())
    shown = re.sub(r"<[^>]+>", "", page)
    assert "Great Expectations: passed with 1 row quarantined (1 row check failed)." in shown


def stock_report(statuses, success=True, quarantined=0) -> dict:
    checks = [
        {
            "check": f"c{i}",
            "level": "row",
            "expectation": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "close"},
            "success": status != "failed",
            "status": status,
            "unexpected_count": 0,
            "error": "boom" if status == "could not run" else None,
            "sample_rows": [],
        }
        for i, status in enumerate(statuses)
    ]
    return {
        "dataset": "s",
        "kind": "stock",
        "rows": 10,
        "rows_validated": 10 - quarantined,
        "rows_quarantined": quarantined,
        "quarantine_fraction": quarantined / 10,
        "max_quarantine_fraction": 0.5,
        "checks": checks,
        "summary": {},
        "success": success,
    }


@pytest.mark.parametrize(
    "statuses, success, quarantined, expected",
    [
        (["passed", "passed"], True, 0, "passed"),
        (["passed", "skipped", "skipped"], True, 0, "passed; 2 checks skipped (no data to check)"),
        (["passed", "failed", "skipped"], True, 2, "passed with 2 rows quarantined (1 row check failed)"),
        (["failed", "failed"], False, 9, "failed: 2 checks failed"),
        (["skipped", "could not run"], False, 0, "failed: 1 check could not run"),
        (["could not run", "failed"], False, 0, "failed: 1 check failed"),  # failed is the worst
    ],
)
def test_the_headline_names_the_worst_check(statuses, success, quarantined, expected):
    report = stock_report(statuses, success, quarantined)
    shown = headline(report, [{"status": s} for s in statuses])
    assert shown["text"] == expected
    assert shown["css"] == ("warn" if "quarantined" in expected else "fail" if "failed" in expected else "ok")
    page = render_validation_page(report)
    assert f'Great Expectations: <span class="{shown["css"]}">{expected}</span>' in page


def test_a_result_written_before_checks_had_a_status_still_renders():
    report = stock_report(["failed"], success=False)
    for c in report["checks"]:
        del c["status"]
    assert "failed: 1 check failed" in render_validation_page(report)


def test_a_clip_failing_whole_shows_its_unparsed_frame_first(project):
    from helpers import VIDEO, video_frame

    frame = video_frame(clips=6, frames=5)
    frame["frame"] = frame["frame"].astype(object)
    frame.loc[7, "frame"] = "two"  # clip c1's third frame
    project.write("clips.csv", frame)
    project.params({"v": VIDEO})
    assert project.run("ingest", "v").exit_code == 0
    assert project.run("validate", "v").exit_code == 0
    report = json.loads((project.root / "reports/validation/v.json").read_text())
    first = check(report, "frames_contiguous_from_0")["sample_rows"][0]
    assert list(first)[:4] == ["row", "computed", "clip_id", "frame"]
    assert first["frame"] == 'null (source: "two")'
    assert first["computed"] == "the clip's frames are 0, 1, 2, … in order: no"
