"""Every expectation of every kind, each shown to catch the rows it is for."""

import json

import numpy as np
import pandas as pd

from helpers import STOCK, TEXT, VIDEO, stock_frame, text_frame, video_frame


def ingest_and_validate(project, name, table_name, table, **cfg):
    project.write(table_name, table)
    project.params({name: cfg})
    ingested = project.run("ingest", name)
    assert ingested.exit_code == 0, ingested.output
    return project.run("validate", name)


def reasons_by(quarantine: pd.DataFrame, key: str) -> dict:
    return {str(k): set(v.split(", ")) for k, v in zip(quarantine[key], quarantine["failed_checks"])}


def test_stock_row_checks_quarantine_exactly_the_bad_rows(project):
    frame = stock_frame(12)
    frame.loc[1, "close"] = np.nan
    frame.loc[2, "close"] = np.inf
    frame.loc[3, "open"] = -1.0
    frame.loc[4, ["high", "low"]] = [90.0, 110.0]
    frame.loc[5, "volume"] = -5.0
    frame.loc[7, "date"] = frame.loc[6, "date"]
    frame.loc[8, "date"] = "not a date"
    frame.loc[9, "high"] = frame.loc[9, "close"] - 0.1
    result = ingest_and_validate(project, "s", "prices.csv", frame, **STOCK)
    assert result.exit_code == 0, result.output

    quarantine = project.read("quarantine", "s")
    reasons = reasons_by(quarantine, "close")
    assert reasons["nan"] == {"close_present"}
    assert "close_finite_positive" in reasons["inf"]
    assert "open_finite_positive" in reasons[str(frame.loc[3, "close"])]
    assert {"low_le_high", "low_le_open", "low_le_close"} <= reasons[str(frame.loc[4, "close"])]
    assert reasons[str(frame.loc[5, "close"])] == {"volume_finite_non_negative"}
    assert reasons[str(frame.loc[6, "close"])] == {"date_unique_per_symbol"}
    assert reasons[str(frame.loc[7, "close"])] == {"date_unique_per_symbol", "date_increasing"}
    assert reasons[str(frame.loc[8, "close"])] == {"date_parses"}
    assert reasons[str(frame.loc[9, "close"])] == {"close_le_high"}
    assert len(quarantine) == 9

    validated = project.read("validated", "s")
    assert len(validated) == 3
    assert "failed_checks" not in validated.columns
    assert not any(c.startswith("_") for c in validated.columns)


def test_stock_gap_is_a_table_level_failure(project):
    frame = pd.concat([stock_frame(5, start="2020-01-01"), stock_frame(5, start="2020-03-01")])
    result = ingest_and_validate(project, "s", "prices.csv", frame, **STOCK, max_gap_days=10)
    assert result.exit_code == 1
    assert "table check failed" in result.output and "max_gap_days" in result.output
    assert "2020-03-02" in result.output, "the message shows a sample row after the gap"
    assert not project.exists("data/validated/s.parquet")
    report = json.loads((project.root / "reports/validation/s.json").read_text())
    assert report["success"] is False
    gap = next(c for c in report["checks"] if c["check"] == "max_gap_days")
    assert gap["unexpected_count"] == 1


def test_quarantine_above_the_threshold_fails_and_names_the_check(project):
    frame = stock_frame(20)
    frame.loc[3, "volume"] = -1.0
    cfg = {**STOCK, "max_quarantine_fraction": 0.01}
    result = ingest_and_validate(project, "s", "prices.csv", frame, **cfg)
    assert result.exit_code == 1
    assert "5.0% of rows failed row checks, more than max_quarantine_fraction 1.0%" in result.output
    assert "volume_finite_non_negative" in result.output and "-1.0" in result.output
    assert len(project.read("quarantine", "s")) == 1


def test_text_row_checks(project):
    frame = text_frame(10)
    frame.loc[0, "review"] = ""
    frame.loc[1, "review"] = "   "
    frame.loc[2, "review"] = None
    frame.loc[3, "review"] = "x" * 51
    frame.loc[4, "review"] = "broken \ufffd byte"
    frame.loc[5, "score"] = "terrible"
    frame.loc[6, "score"] = None
    result = ingest_and_validate(
        project, "t", "reviews.parquet", frame, **{**TEXT, "source": "reviews.parquet", "max_chars": 50}
    )
    assert result.exit_code == 0, result.output
    quarantine = project.read("quarantine", "t").reset_index(drop=True)
    by_row = {i: set(r.split(", ")) for i, r in zip(range(len(quarantine)), quarantine["failed_checks"])}
    expected = [
        {"text_not_blank", "text_within_length_cap"},
        {"text_not_blank"},
        {"text_present"},
        {"text_within_length_cap"},
        {"text_valid_utf8"},
        {"label_in_declared_set"},
        {"label_present"},
    ]
    assert list(by_row.values()) == expected
    report = json.loads((project.root / "reports/validation/t.json").read_text())
    assert report["summary"]["class_balance"]["all"] == {
        "great": {"count": 2, "fraction": 0.6667},
        "other": {"count": 1, "fraction": 0.3333},
    }


def test_video_checks_quarantine_whole_clips(project):
    frame = video_frame(clips=9, frames=6, dims=2)

    def clip(name):
        return frame["clip_id"] == name

    frame = frame[~(clip("c1") & (frame["frame"] == 3))]  # a missing frame
    frame.loc[clip("c2") & (frame["frame"] == 2), "f_1"] = np.nan
    frame.loc[clip("c3") & (frame["frame"] == 4), "f_0"] = np.inf
    frame.loc[clip("c4") & (frame["frame"] == 5), "label"] = "x"  # a second label in one clip
    frame = frame[~(clip("c5") & (frame["frame"] >= 3))]  # too short
    frame.loc[clip("c6"), "label"] = "zebra"
    frame.loc[clip("c7"), "frame"] += 1  # frames start at 1
    cfg = {**VIDEO, "min_frames": 4, "labels": ["a", "b"]}
    result = ingest_and_validate(project, "v", "clips.csv", frame, **cfg)
    assert result.exit_code == 0, result.output
    quarantine = project.read("quarantine", "v")
    per_clip = quarantine.groupby("clip_id")["failed_checks"].agg(lambda r: set(", ".join(r).split(", ")))
    assert per_clip.to_dict() == {
        "c1": {"frames_contiguous_from_0"},
        "c2": {"f_1_present"},
        "c3": {"f_0_finite"},
        "c4": {"one_label_per_clip", "label_in_declared_set"},
        "c5": {"clip_length_in_bounds"},
        "c6": {"label_in_declared_set"},
        "c7": {"frames_contiguous_from_0"},
    }
    sizes = quarantine.groupby("clip_id").size()
    assert sizes["c2"] == 6 and sizes["c1"] == 5, "the whole clip goes, not just the bad frame"
    assert sorted(project.read("validated", "v")["clip_id"].unique()) == ["c0", "c8"]


def test_validation_writes_its_page_and_the_json_result(project):
    result = ingest_and_validate(project, "s", "prices.csv", stock_frame(10), **STOCK)
    assert result.exit_code == 0, result.output
    page = (project.root / "reports/validation/s/index.html").read_text()
    assert "Validation of s" in page and "expect_column_pair_values_a_to_be_greater_than_b" in page
    assert "<script" not in page and "://" not in page  # the project's own page: no script, nothing fetched
    report = json.loads((project.root / "reports/validation/s.json").read_text())
    assert report["success"] and report["rows_validated"] == 10 and report["rows_quarantined"] == 0
    assert {c["check"] for c in report["checks"]} >= {"date_increasing", "max_gap_days", "low_le_high"}
    assert "10 rows valid, 0 quarantined" in result.output


def test_table_checks_catch_a_raw_file_that_ingest_did_not_write(project):
    """Validate guards against stale or hand-made raw files: columns first, then has_rows."""
    project.params({"s": STOCK})
    raw = project.root / "data/raw"
    raw.mkdir(parents=True)
    canonical = pd.DataFrame(
        {"date": pd.to_datetime([]), "symbol": [], "open": [], "high": [], "low": [], "close": [], "volume": []}
    ).astype({"symbol": "string"})
    canonical.to_parquet(raw / "s.parquet")
    empty = project.run("validate", "s")
    assert empty.exit_code == 1 and "has_rows" in empty.output

    frame = stock_frame(5).assign(date=lambda f: pd.to_datetime(f["date"]), symbol="A").drop(columns="volume")
    frame.to_parquet(raw / "s.parquet")
    result = project.run("validate", "s")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "lacks the canonical column(s) volume of kind stock" in result.output
