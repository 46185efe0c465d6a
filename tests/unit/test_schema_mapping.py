"""Each kind turns its sources into one canonical table."""

import numpy as np
import pandas as pd
import pytest

from helpers import STOCK, TEXT, VIDEO, stock_frame, text_frame, video_frame
from seqbench.config import parse_params
from seqbench.errors import SchemaError
from seqbench.kinds import get_kind
from seqbench.sources import NestedClips


def dataset(**fields):
    return parse_params({"datasets": {"d": fields}}).dataset("d")


def canonical(cfg, table):
    key = next(iter(cfg.sources()))
    return get_kind(cfg.kind).canonicalize({key: table}, cfg)


def test_stock_single_series_gets_the_configured_symbol_and_nan_for_absent_columns():
    frame = stock_frame(5)[["date", "close"]]
    df = canonical(dataset(**STOCK, symbol="ABC"), frame)
    assert list(df.columns) == ["date", "symbol", "open", "high", "low", "close", "volume"]
    assert set(df["symbol"]) == {"ABC"}
    assert df[["open", "high", "low", "volume"]].isna().all().all()
    assert str(df["date"].dtype) == "datetime64[ns]"


def test_stock_long_file_is_sorted_per_symbol_by_date():
    frame = pd.concat([stock_frame(3, "B"), stock_frame(3, "A")]).iloc[::-1]
    df = canonical(dataset(**STOCK), frame)
    assert list(df["symbol"]) == ["A"] * 3 + ["B"] * 3
    assert df.groupby("symbol")["date"].apply(lambda d: d.is_monotonic_increasing).all()


def test_stock_wide_file_is_reshaped_to_long():
    wide = pd.DataFrame({"date": ["2020-01-02", "2020-01-03"], "AAA": [1.0, 2.0], "BBB": [3.0, 4.0]})
    df = canonical(dataset(**STOCK), wide)
    assert len(df) == 4
    assert df.set_index(["symbol", "date"])["close"].to_dict()[("BBB", pd.Timestamp("2020-01-03"))] == 4.0


def test_stock_mapping_and_case_insensitive_names():
    frame = pd.DataFrame({"Date": ["2020-01-02"], "Adj Close": [5.0], "Close": [4.0], "Volume": [10]})
    df = canonical(dataset(**STOCK, columns={"close": "Adj Close"}), frame)
    assert df["close"].tolist() == [5.0]
    assert df["volume"].tolist() == [10.0]


@pytest.mark.parametrize(
    "dates, fmt",
    [
        (["2020-01-02", "2020-01-03"], None),
        (["2020-01-02T00:00:00Z", "2020-01-03T00:00:00Z"], None),
        (["01/02/2020", "01/03/2020"], None),
        (["02.01.2020", "03.01.2020"], "%d.%m.%Y"),
    ],
)
def test_stock_date_formats(dates, fmt):
    frame = pd.DataFrame({"date": dates, "close": [1.0, 2.0]})
    df = canonical(dataset(**STOCK, date_format=fmt), frame)
    assert df["date"].tolist() == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03")]


def test_stock_mapping_to_an_absent_column_names_it():
    with pytest.raises(SchemaError, match="column 'Price' \\(mapped to close in params.yaml\\) not found"):
        canonical(dataset(**STOCK, columns={"close": "Price"}), stock_frame(3))


def test_stock_without_close_and_not_wide_is_refused():
    frame = stock_frame(3).drop(columns="close")
    with pytest.raises(SchemaError, match="missing column\\(s\\) close"):
        canonical(dataset(**STOCK), frame)


def test_a_column_of_words_is_a_wrong_dtype_error_but_a_stray_word_is_not():
    frame = stock_frame(4)
    frame["close"] = ["a", "b", "c", "d"]
    with pytest.raises(SchemaError, match="column 'close' does not hold numbers: 4 of 4"):
        canonical(dataset(**STOCK), frame)
    frame = stock_frame(4)
    frame["close"] = ["1", "2", "oops", "4"]
    assert canonical(dataset(**STOCK), frame)["close"].isna().sum() == 1


def test_text_splits_come_from_the_source_keys():
    cfg = dataset(**{**TEXT, "source": {"train": "a.csv", "test": "b.csv"}})
    df = get_kind("text").canonicalize({"train": text_frame(4), "test": text_frame(2)}, cfg)
    assert list(df.columns) == ["text", "label", "split"]
    assert df["split"].tolist() == ["train"] * 4 + ["test"] * 2


def test_text_integer_labels_become_strings():
    frame = pd.DataFrame({"review": ["x", "y", "z"], "score": [0, 1, None]})
    df = canonical(dataset(**{**TEXT, "labels": [0, 1]}), frame)
    assert df["label"].tolist()[:2] == ["0", "1"] and pd.isna(df["label"][2])


def test_video_long_table_keeps_features_and_orders_frames():
    frame = video_frame(clips=2, frames=3, dims=2).sample(frac=1, random_state=0)
    df = canonical(dataset(**VIDEO), frame)
    assert list(df.columns) == ["clip_id", "frame", "label", "split", "f_0", "f_1"]
    assert df.groupby("clip_id")["frame"].apply(list).tolist() == [[0, 1, 2], [0, 1, 2]]


def test_video_nested_clips_of_different_lengths_and_dims():
    clips = NestedClips(X=[np.ones((3, 4)), np.zeros((3, 6))], y=["a", "b"], split=["train", "test"])
    df = canonical(dataset(**{**VIDEO, "source": "aeon:GunPoint"}), clips)
    assert df.groupby("clip_id", sort=False).size().tolist() == [4, 6]
    assert [c for c in df.columns if c.startswith("f_")] == ["f_0", "f_1", "f_2"]
    assert df.groupby("clip_id", sort=False)["split"].first().tolist() == ["train", "test"]


def test_video_without_features_is_refused():
    frame = video_frame()[["clip_id", "frame", "label"]]
    with pytest.raises(SchemaError, match="no numeric feature columns"):
        canonical(dataset(**VIDEO), frame)
