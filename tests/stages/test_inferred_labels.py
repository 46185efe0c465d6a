"""`labels:` may be left out of a classification dataset: prepare then takes the labels of the
data, sorted, and records them in meta.json, which every later stage reads. Declared labels
that do not fit the data are reported with the labels found beside the ones declared."""

import json

import numpy as np
import pandas as pd
import pytest

from helpers import TEXT, VIDEO, video_frame
from seqbench.errors import ConfigError
from seqbench.kinds import classify, text

UNDECLARED = {k: v for k, v in TEXT.items() if k != "labels"}


def reviews(labels_in_order: list[str], n: int = 40, seed: int = 0) -> pd.DataFrame:
    """`n` reviews whose labels cycle through `labels_in_order` (so they first appear in that order)."""
    frame = pd.DataFrame(
        {
            "review": [f"review {i} says {labels_in_order[i % len(labels_in_order)]}" for i in range(n)],
            "score": [labels_in_order[i % len(labels_in_order)] for i in range(n)],
        }
    )
    return frame if seed == 0 else frame.sample(frac=1, random_state=seed).reset_index(drop=True)


def prepared(project, frame, cfg, name="t") -> dict:
    project.write("reviews.csv", frame)
    project.params({name: cfg})
    for step in ("ingest", "validate", "prepare"):
        result = project.run(step, name)
        assert result.exit_code == 0, result.output
    return json.loads((project.root / f"data/prepared/{name}/meta.json").read_text())


def test_undeclared_labels_are_inferred_sorted_and_recorded_for_later_stages(project):
    meta = prepared(project, reviews(["zebra", "ant", "mole"]), UNDECLARED)
    assert meta["labels"] == ["ant", "mole", "zebra"], "sorted, not in order of appearance"

    arrays = np.load(project.root / "data/prepared/t/arrays.npz")
    validated = project.read("validated", "t")
    names = np.array(meta["labels"])[arrays["labels"]]
    assert names.tolist() == validated["label"].tolist(), "each row's class index points at its own label"

    report = json.loads((project.root / "reports/validation/t.json").read_text())
    assert report["summary"]["labels"] == ["ant", "mole", "zebra"]
    assert report["summary"]["labels_from"].startswith("inferred")
    assert "label_in_declared_set" not in {c["check"] for c in report["checks"]}
    page = (project.root / "reports/validation/t/index.html").read_text()
    assert "ant, mole, zebra" in page


def test_inferred_labels_do_not_depend_on_the_row_order(project):
    first = prepared(project, reviews(["zebra", "ant", "mole"]), UNDECLARED)["labels"]
    again = prepared(project, reviews(["mole", "zebra", "ant"], seed=3), UNDECLARED)["labels"]
    assert first == again == ["ant", "mole", "zebra"]


def test_predictions_name_the_inferred_classes(project):
    meta = prepared(project, reviews(["yes", "no"]), UNDECLARED)
    rows = pd.DataFrame({"text": ["a", "b"]})
    out = text.format_predictions(rows, np.array([[0.9, 0.1], [0.2, 0.8]]), meta)
    assert [c for c in out.columns if c.startswith("p_")] == ["p_no", "p_yes"]
    assert out["predicted_label"].tolist() == ["no", "yes"]


def test_declared_labels_keep_their_order(project):
    meta = prepared(project, reviews(["great", "other"]), {**TEXT, "labels": ["other", "great"]})
    assert meta["labels"] == ["other", "great"]


def test_undeclared_video_labels_are_inferred_too(project):
    project.write("clips.csv", video_frame(clips=12, frames=4).replace({"label": {"a": "walk", "b": "run"}}))
    project.params({"v": VIDEO})
    for step in ("ingest", "validate", "prepare"):
        result = project.run(step, "v")
        assert result.exit_code == 0, result.output
    meta = json.loads((project.root / "data/prepared/v/meta.json").read_text())
    assert meta["labels"] == ["run", "walk"]


@pytest.mark.parametrize(
    "found, expected",
    [
        (["b", "a", "c", "a"], ["a", "b", "c"]),
        (["10", "2", "1", "2"], ["1", "2", "10"]),  # whole numbers: numerically
        (["10", "2", "x"], ["10", "2", "x"]),  # otherwise as text
        (pd.Series(["b", None, "a"], dtype="string"), ["a", "b"]),  # nulls are no label
    ],
)
def test_inferred_order(found, expected):
    assert classify.inferred_labels(found) == expected
    assert classify.class_names(found, None) == expected


def test_declared_labels_that_miss_the_data_name_both():
    with pytest.raises(ConfigError) as info:
        classify.class_names(["positive", "negative", "positive"], ["pos", "neg"])
    assert "found negative, positive; declared pos, neg" in str(info.value)


def test_one_label_is_not_enough_to_infer_a_classifier():
    with pytest.raises(ConfigError, match=r"labels: not declared, and the validated data has 1 label\(s\) \(yes\)"):
        classify.class_names(["yes", "yes"], None)


def test_a_label_error_lists_the_labels_found_and_declared(project):
    project.write("reviews.csv", reviews(["positive", "negative"], n=10))
    project.params({"t": {**TEXT, "labels": ["pos", "neg"], "max_quarantine_fraction": 0.1}})
    assert project.run("ingest", "t").exit_code == 0
    result = project.run("validate", "t")
    assert result.exit_code == 1
    assert "label_in_declared_set" in result.output
    assert "found negative, positive; declared pos, neg" in result.output
    assert "{'row'" not in result.output and "{" not in result.output.split("label_in_declared_set", 1)[1]
    page = (project.root / "reports/validation/t/index.html").read_text()
    assert "failed: found negative, positive; declared pos, neg" in page


def test_many_labels_are_counted_not_all_listed():
    found = [f"l{i:03d}" for i in range(30)]
    message = classify.label_mismatch(found, ["a", "b"])
    assert message.startswith("found l000, l001,") and "… (30 in all); declared a, b" in message
