"""Baselines on the validation split (issue 22, item 6): each classification kind's baselines,
asked for split="val", are fit on the training items alone and predict the validation items, so
the best baseline can be chosen there; the scorer of split="val" scores the validation labels.
(The stock kind's are in test_volatility.py.)"""

import numpy as np
import pandas as pd
import pytest

from seqbench.kinds import classify, text, video
from seqbench.kinds.base import SCORED_SPLITS, check_split, ragged

WORDS = ["good", "fine", "tasty", "bad", "stale", "meh", "ok", "food", "snack", "coffee"]


def reviews(tmp_path, texts, name="validated.parquet"):
    path = tmp_path / name
    pd.DataFrame({"text": texts}).to_parquet(path)
    return path


def review_data(tmp_path):
    """120 reviews: 80 training, 20 validation, 20 test; labels follow the words, mostly."""
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, 6)) for _ in range(120)]
    labels = np.array([0 if ("good" in t or "tasty" in t) and i % 5 else 1 for i, t in enumerate(texts)])
    arrays = {
        "labels": labels,
        "idx_train": np.arange(0, 80),
        "idx_val": np.arange(80, 100),
        "idx_test": np.arange(100, 120),
    }
    return texts, arrays, {"labels": ["a", "b"], "class_weight": "balanced"}


def test_text_baselines_on_validation_are_fit_on_the_training_reviews_only(tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts, arrays, meta = review_data(tmp_path)
    path = reviews(tmp_path, texts)
    got = text.baselines(arrays, meta, path, split="val")
    assert list(got) == list(text.baselines(arrays, meta, path)) == ["tfidf_logreg", "majority"]
    assert all(v.shape == (20, 2) for v in got.values())
    reference = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(max_iter=2000, class_weight="balanced"),
    ).fit(np.array(texts[:80], dtype=object), arrays["labels"][:80])
    np.testing.assert_allclose(got["tfidf_logreg"], reference.predict_proba(np.array(texts[80:100], dtype=object)))
    np.testing.assert_allclose(got["majority"][0], np.bincount(arrays["labels"][:80], minlength=2) / 80)

    # Other validation and test labels, and other test texts, change no validation output ...
    flipped = {**arrays, "labels": arrays["labels"].copy()}
    flipped["labels"][80:] = 1 - flipped["labels"][80:]
    other_texts = texts[:100] + ["stale coffee meh bad"] * 20
    again = text.baselines(flipped, meta, reviews(tmp_path, other_texts, "other.parquet"), split="val")
    for name in got:
        np.testing.assert_allclose(again[name], got[name], err_msg=name)
    # ... while the test split's baselines are fit on the validation labels too.
    seen, unseen = text.baselines(flipped, meta, path), text.baselines(arrays, meta, path)
    assert not np.allclose(seen["tfidf_logreg"], unseen["tfidf_logreg"])


def clip_data():
    """24 clips of 8 to 12 frames (ramps and sines: 1-NN DTW tells them apart); 12 training, 6
    validation, 6 test."""
    rng = np.random.default_rng(0)
    clips, labels = [], []
    for i in range(24):
        label, frames = i % 2, 8 + i % 5
        t = np.linspace(0, 1, frames)
        shape = np.sin(2 * np.pi * t) if label else t
        clips.append(np.column_stack([shape + rng.normal(0, 0.05, frames), 0.5 * shape]))
        labels.append(label)
    values, offsets = ragged(clips, "float32")
    arrays = {
        "values": values,
        "offsets": offsets,
        "labels": np.array(labels),
        "idx_train": np.arange(0, 12),
        "idx_val": np.arange(12, 18),
        "idx_test": np.arange(18, 24),
    }
    return arrays, {"labels": ["ramp", "sine"]}


def test_video_baselines_on_validation_are_fit_on_the_training_clips_only():
    arrays, meta = clip_data()
    got = video.baselines(arrays, meta, None, split="val")
    assert list(got) == ["nn_dtw", "majority"]
    assert all(v.shape == (6, 2) for v in got.values())
    np.testing.assert_array_equal(got["nn_dtw"].argmax(axis=1), arrays["labels"][12:18])  # separable shapes
    np.testing.assert_allclose(got["majority"][0], np.bincount(arrays["labels"][:12], minlength=2) / 12)

    # Flipped validation and test labels and noise for the test clips change no validation output:
    # 1-NN still names each validation clip's true shape, which its flipped label no longer is.
    changed = {**arrays, "labels": arrays["labels"].copy(), "values": arrays["values"].copy()}
    changed["labels"][12:] = 1 - changed["labels"][12:]
    test_frames = slice(arrays["offsets"][18], None)
    changed["values"][test_frames] = np.random.default_rng(1).normal(size=changed["values"][test_frames].shape)
    again = video.baselines(changed, meta, None, split="val")
    for name in got:
        np.testing.assert_array_equal(again[name], got[name], err_msg=name)


def test_the_classifier_scorer_of_validation_scores_the_validation_labels():
    arrays, meta = clip_data()
    scorer = video.scorer(arrays, meta, split="val")
    np.testing.assert_array_equal(scorer.labels, arrays["labels"][12:18])
    perfect = np.eye(2)[arrays["labels"][12:18]]
    scores = scorer.scores(perfect)
    assert scores["macro_f1"] == pytest.approx(1.0) and scorer.primary == "macro_f1"
    assert set(scores) == set(video.scorer(arrays, meta).scores(np.eye(2)[arrays["labels"][18:]]))
    assert text.scorer(arrays, meta, split="val").scores(1 - perfect)["macro_f1"] == pytest.approx(0.0)
    assert len(scorer.predictions_table({"m": perfect})) == 6


def test_an_unknown_split_is_a_clear_error():
    arrays, meta = clip_data()
    assert SCORED_SPLITS == ("test", "val") and check_split("val") == "val"
    for call in (
        lambda: classify.baseline_items(arrays, "train"),
        lambda: video.scorer(arrays, meta, split="train"),
        lambda: video.baselines(arrays, meta, None, split="train"),
    ):
        with pytest.raises(ValueError, match="split must be one of test, val, not 'train'"):
            call()
