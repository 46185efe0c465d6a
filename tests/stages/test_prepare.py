"""Preparation: windows without copies, and nothing learned from validation or test data."""

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import STOCK, TEXT, VIDEO, stock_frame, text_frame, video_frame
from seqbench.batching import RaggedDataset, WindowDataset, collate_ragged
from seqbench.config import parse_params
from seqbench.kinds import get_kind


def dataset(**fields):
    return parse_params({"datasets": {"d": fields}}).dataset("d")


def canonical(cfg, table, key=None):
    return get_kind(cfg.kind).canonicalize({key: table}, cfg)


def random_prices(days=300, symbols=("A", "B"), seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for s in symbols:
        frame = stock_frame(days, symbol=s)
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, days)))
        frame["close"], frame["open"] = close, close * (1 + rng.normal(0, 0.002, days))
        frame["high"] = np.maximum(frame["open"], close) * 1.01
        frame["low"] = np.minimum(frame["open"], close) * 0.99
        frame["volume"] = rng.integers(1000, 5000, days).astype(float)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_window_dataset_equals_a_naive_copy_and_shares_memory():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(50, 3)).astype("float32")
    target = rng.normal(size=50).astype("float32")
    ends = np.array([4, 9, 30, 49])
    windows = WindowDataset(features, target, ends, lookback=5)
    naive = [(features[e - 4 : e + 1], target[e]) for e in ends]
    assert len(windows) == len(naive)
    for (x, y), (nx, ny) in zip(windows, naive):
        np.testing.assert_array_equal(x.numpy(), nx)
        assert y.item() == pytest.approx(ny)
        # A view into the one features tensor, not a copy.
        assert x.untyped_storage().data_ptr() == windows.features.untyped_storage().data_ptr()


def test_ragged_batches_pad_and_report_lengths():
    values = np.arange(10, dtype="int32")
    data = RaggedDataset(values, np.array([0, 2, 7, 10]), np.array([0, 1, 0]), np.array([2, 0, 1]))
    padded, lengths, labels = collate_ragged([data[i] for i in range(3)])
    assert lengths.tolist() == [3, 2, 5]
    assert padded.shape == (3, 5)
    assert padded[0].tolist() == [7, 8, 9, 0, 0]
    assert labels.tolist() == [0, 0, 1]


def test_stock_scalers_and_targets_come_from_train_only():
    cfg = dataset(**STOCK, lookback=10, splits={"validation": 0.2, "test": 0.2})
    df = canonical(cfg, random_prices())
    arrays, meta = get_kind("stock").prepare(df, cfg)

    dates = pd.to_datetime(arrays["date"])
    train_end = pd.Timestamp(meta["train_end"])
    raw = get_kind("stock").raw_features(df)
    expected_mean = raw[(df["date"] <= train_end).to_numpy()].mean()
    np.testing.assert_allclose(meta["feature_mean"], expected_mean.to_numpy(), rtol=1e-9)

    # Changing every price after the training period changes no training statistic.
    later = df.copy()
    later.loc[later["date"] > train_end, ["open", "high", "low", "close"]] *= 3.0
    arrays2, meta2 = get_kind("stock").prepare(later, cfg)
    for key in ("feature_mean", "feature_scale", "target_mean", "target_std"):
        assert meta2[key] == meta[key], key
    np.testing.assert_array_equal(arrays2["ends_train"], arrays["ends_train"])

    # No training target is realised after the cut-off, and splits are in time order.
    horizon_dates = dates[np.minimum(arrays["ends_train"] + cfg.horizon, len(dates) - 1)]
    assert (horizon_dates <= train_end).all()
    assert dates[arrays["ends_train"]].max() < dates[arrays["ends_val"]].min()
    assert dates[arrays["ends_val"]].max() < dates[arrays["ends_test"]].min()


def test_stock_windows_stay_within_one_symbol():
    cfg = dataset(**STOCK, lookback=10)
    df = canonical(cfg, random_prices(days=100))
    arrays, _ = get_kind("stock").prepare(df, cfg)
    symbols = arrays["symbol"]
    for end in np.concatenate([arrays[f"ends_{s}"] for s in ("train", "val", "test")]):
        assert len(set(symbols[end - 9 : end + 1])) == 1


def test_text_vocabulary_is_fit_on_the_training_split_only():
    train, test = text_frame(40), text_frame(10)
    train["review"] = train["review"] + " trainword"
    test["review"] = test["review"] + " testonlyword"
    cfg = dataset(**{**TEXT, "source": {"train": "a.csv", "test": "b.csv"}, "min_freq": 1})
    df = get_kind("text").canonicalize({"train": train, "test": test}, cfg)
    arrays, meta = get_kind("text").prepare(df, cfg)
    assert "trainword" in meta["vocabulary"] and "testonlyword" not in meta["vocabulary"]
    assert meta["sizes"] == {"train": 34, "val": 6, "test": 10}
    unk = meta["vocabulary"].index("<unk>")
    last_test = arrays["idx_test"][-1]
    tokens = arrays["values"][arrays["offsets"][last_test] : arrays["offsets"][last_test + 1]]
    assert tokens[-1] == unk


def test_text_words_only_in_validation_stay_unknown():
    train = text_frame(40)
    train.loc[:, "review"] = [f"common words here {i % 2}" for i in range(40)]
    train.loc[0, "review"] = "rareword rareword"
    cfg = dataset(**{**TEXT, "min_freq": 1, "splits": {"validation": 0.5, "test": 0.2}})
    df = canonical(cfg, train)
    arrays, meta = get_kind("text").prepare(df, cfg)
    in_train = 0 in arrays["idx_train"]
    assert ("rareword" in meta["vocabulary"]) == in_train


def test_text_tokens_are_cut_to_max_tokens():
    frame = text_frame(20)
    frame.loc[:, "review"] = "word " * 50
    cfg = dataset(**{**TEXT, "min_freq": 1, "max_tokens": 7})
    arrays, _ = get_kind("text").prepare(canonical(cfg, frame), cfg)
    assert np.diff(arrays["offsets"]).max() == 7


def test_video_standardisation_uses_train_clips_only():
    frame = video_frame(clips=10, frames=5, dims=2)
    frame["split"] = np.where(frame["clip_id"].isin(["c8", "c9"]), "test", "train")
    frame.loc[frame["split"] == "test", ["f_0", "f_1"]] = 1e6  # would dominate any leak
    cfg = dataset(**VIDEO, splits={"validation": 0.25, "test": 0.2})
    arrays, meta = get_kind("video").prepare(canonical(cfg, frame), cfg)
    assert max(meta["feature_mean"]) < 100
    clips = arrays["clip_ids"]
    assert set(clips[arrays["idx_test"]]) == {"c8", "c9"}
    assert not set(clips[arrays["idx_val"]]) & set(clips[arrays["idx_train"]])
    train_rows = np.concatenate(
        [np.arange(arrays["offsets"][i], arrays["offsets"][i + 1]) for i in arrays["idx_train"]]
    )
    np.testing.assert_allclose(arrays["values"][train_rows].mean(axis=0), 0, atol=1e-5)


def test_classification_validation_split_is_stratified():
    frame = video_frame(clips=20, frames=3)
    cfg = dataset(**VIDEO, splits={"validation": 0.5, "test": 0.2})
    arrays, _ = get_kind("video").prepare(canonical(cfg, frame), cfg)
    val_labels = arrays["labels"][arrays["idx_val"]]
    assert sorted(np.bincount(val_labels).tolist()) == [int(len(val_labels) / 2)] * 2


def test_torch_tensors_not_numpy_reach_the_model():
    features = np.zeros((12, 2), "float32")
    x, y = WindowDataset(features, np.zeros(12, "float32"), np.array([11]), 3)[0]
    assert isinstance(x, torch.Tensor) and x.shape == (3, 2)


def test_bucket_batches_cover_every_item_once_and_group_similar_lengths():
    from seqbench.batching import BucketBatchSampler

    lengths = np.random.default_rng(0).integers(1, 300, size=1000)
    sampler = BucketBatchSampler(lengths, batch_size=32, seed=0, pool=10)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    padded = sum(len(b) * lengths[b].max() for b in batches)
    random_padded = sum(32 * lengths[i : i + 32].max() for i in range(0, 1000, 32))
    assert padded < 0.6 * random_padded, "bucketing should cut padding well below random batches"
    assert list(BucketBatchSampler(lengths, 32, seed=0, pool=10)) == batches  # seeded


# ---- a test split too small for a verdict -------------------------------------------------------


@pytest.mark.parametrize("size, warned", [(9, True), (99, True), (100, False), (2492, False)])
def test_a_test_split_under_100_items_is_flagged(size, warned):
    from seqbench.stages.prepare import MIN_TEST_ITEMS, small_splits

    assert MIN_TEST_ITEMS == 100
    expected = {"test": {"size": size, "needed": 100}} if warned else {}
    # Only the test split counts: a 10-clip validation split (the bundled video's) is no reason.
    assert small_splits({"train": 40, "val": 10, "test": size}) == expected


def prepared_text(project, rows: int):
    project.write("reviews.csv", text_frame(rows))
    project.params({"reviews": TEXT})
    for step in ("ingest", "validate"):
        assert project.run(step, "reviews").exit_code == 0
    return project.run("prepare", "reviews")


def test_prepare_warns_of_a_small_test_split_and_records_it(project):
    """60 texts split 43/8/9: 9 test items, one of which moves accuracy by 0.11, eleven times the
    ROPE. The stage still succeeds; the warning names the dataset, the split, its size and the
    size needed, and meta.json records it."""
    import json

    result = prepared_text(project, 60)
    assert result.exit_code == 0, result.output
    assert "prepare reviews: train 43, val 8, test 9" in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1, result.output
    assert "prepare reviews: the test split has 9 items, fewer than the 100 a verdict needs" in lines[0]
    assert "datasets.reviews.splits.test" in lines[0]
    meta = json.loads((project.root / "data/prepared/reviews/meta.json").read_text())
    assert meta["small_splits"] == {"test": {"size": 9, "needed": 100}}


def test_prepare_is_quiet_about_a_large_enough_test_split(project):
    import json

    result = prepared_text(project, 700)
    assert result.exit_code == 0, result.output
    assert "test 105" in result.output
    assert "warning" not in result.output
    assert "small_splits" not in json.loads((project.root / "data/prepared/reviews/meta.json").read_text())
