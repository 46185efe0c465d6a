"""Bad input ends in a clear error or in quarantine: never a traceback, and the source is untouched.

Each case writes a source file, runs `seqbench ingest` and `seqbench validate` as a user would,
and checks the outcome plus the source file's bytes.
"""

import subprocess
import sys

import numpy as np
import pytest

from helpers import STOCK, TEXT, VIDEO, assert_clean_failure, sha256, stock_frame, text_frame, video_frame


def truncated_parquet() -> bytes:
    import io

    buffer = io.BytesIO()
    stock_frame(50).to_parquet(buffer)
    return buffer.getvalue()[:300]


def with_changes(frame, **cells):
    frame = frame.copy()
    for spec, value in cells.items():
        column, row = spec.rsplit("_", 1)
        frame.loc[int(row), column] = value
    return frame


def stock_with_duplicate_date():
    frame = stock_frame(10)
    frame.loc[5, "date"] = frame.loc[4, "date"]
    return frame


def clip_missing_frame():
    frame = video_frame(clips=4, frames=8)
    return frame[~((frame["clip_id"] == "c1") & (frame["frame"] == 4))]


def clip_with_nan_feature():
    frame = video_frame(clips=4, frames=8)
    frame.loc[10, "f_1"] = np.nan
    return frame


# name: (file name, content, dataset params, expected) where expected is
#   ("error", fragment of the message) or ("quarantine", a check name in failed_checks)
CASES = {
    "empty file": ("prices.csv", b"", STOCK, ("error", "prices.csv: file is empty")),
    "truncated parquet": (
        "prices.parquet",
        truncated_parquet(),
        {**STOCK, "source": "prices.parquet"},
        ("error", "prices.parquet: not a readable parquet file"),
    ),
    "csv missing a column": (
        "prices.csv",
        stock_frame(5).drop(columns="date"),
        STOCK,
        ("error", "missing column(s) date"),
    ),
    "wrong dtype": (
        "prices.csv",
        stock_frame(5).assign(close="high"),
        STOCK,
        ("error", "column 'close' does not hold numbers"),
    ),
    "NaN price": ("prices.csv", with_changes(stock_frame(10), close_3=np.nan), STOCK, ("quarantine", "close_present")),
    "inf price": (
        "prices.csv",
        with_changes(stock_frame(10), close_3=np.inf),
        STOCK,
        ("quarantine", "close_finite_positive"),
    ),
    "duplicate dates": ("prices.csv", stock_with_duplicate_date(), STOCK, ("quarantine", "date_unique_per_symbol")),
    "high below low": ("prices.csv", with_changes(stock_frame(10), high_2=1.0), STOCK, ("quarantine", "low_le_high")),
    "negative volume": (
        "prices.csv",
        with_changes(stock_frame(10), volume_2=-3.0),
        STOCK,
        ("quarantine", "volume_finite_non_negative"),
    ),
    "empty text": (
        "reviews.parquet",
        with_changes(text_frame(6), review_1=""),
        {**TEXT, "source": "reviews.parquet"},
        ("quarantine", "text_not_blank"),
    ),
    "non-utf8 bytes": (
        "reviews.csv",
        b"review,score\ngood \xff\xfe food,great\nfine,other\n",
        TEXT,
        ("quarantine", "text_valid_utf8"),
    ),
    "unknown label": (
        "reviews.csv",
        with_changes(text_frame(6), score_2="meh"),
        TEXT,
        ("quarantine", "label_in_declared_set"),
    ),
    "clip with a missing frame": ("clips.csv", clip_missing_frame(), VIDEO, ("quarantine", "frames_contiguous_from_0")),
    "NaN features": ("clips.csv", clip_with_nan_feature(), VIDEO, ("quarantine", "f_1_present")),
    "bad params.yaml": (
        "prices.csv",
        stock_frame(5),
        {**STOCK, "kind": "prices"},
        ("error", "datasets.d.kind: must be one of stock, text, video"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(project, case):
    file_name, content, params, (outcome, expected) = CASES[case]
    source = project.write(file_name, content)
    before = sha256(source)
    project.params({"d": params})

    result = project.run("ingest", "d")
    if result.exit_code == 0:
        result = project.run("validate", "d")

    if outcome == "error":
        assert_clean_failure(result, expected)
        assert not project.exists("data/validated/d.parquet")
    else:
        assert result.exit_code == 0, result.output
        quarantine = project.read("quarantine", "d")
        assert len(quarantine) >= 1
        assert quarantine["failed_checks"].str.contains(expected).all(), quarantine["failed_checks"].tolist()
        validated = project.read("validated", "d")
        assert len(validated) > 0 and "failed_checks" not in validated
    assert sha256(source) == before, "the source file must never be modified"


def test_unsorted_dates_are_put_in_order_without_touching_the_source(project):
    source = project.write("prices.csv", stock_frame(10).sample(frac=1, random_state=1))
    before = sha256(source)
    project.params({"d": STOCK})
    assert project.run("ingest", "d").exit_code == 0
    assert project.run("validate", "d").exit_code == 0
    validated = project.read("validated", "d")
    assert validated["date"].is_monotonic_increasing and len(validated) == 10
    assert sha256(source) == before


def test_failed_ingest_leaves_no_partial_output_and_keeps_the_last_good_one(project):
    project.write("prices.csv", stock_frame(5))
    project.params({"d": STOCK})
    assert project.run("ingest", "d").exit_code == 0
    good = sha256(project.root / "data/raw/d.parquet")
    project.write("prices.csv", b"date,close\n")  # now header-only
    assert_clean_failure(project.run("ingest", "d"), "no rows")
    assert sha256(project.root / "data/raw/d.parquet") == good
    leftovers = [p.name for p in (project.root / "data/raw").iterdir() if p.name.startswith(".")]
    assert leftovers == [], "temporary files must be cleaned up"


def test_validate_before_ingest_says_what_to_run(project):
    project.params({"d": STOCK})
    assert_clean_failure(project.run("validate", "d"), "run `seqbench ingest d` first")


def test_errors_from_the_real_command_are_one_line_without_traceback(project):
    project.params({"d": {**STOCK, "source": "missing.csv"}})
    process = subprocess.run(
        [sys.executable, "-m", "seqbench", "ingest", "d"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 1
    assert "Traceback" not in process.stderr
    errors = [line for line in process.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: missing.csv: file not found (looked at {project.root / 'missing.csv'})"]
