"""Credentials in source URLs: masked by the URL's structure, whatever characters the password
holds, and wherever a registered source's secret turns up in a message."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from seqbench.errors import SourceError
from seqbench.redact import redact_url, register_sources, shown
from seqbench.sources import protocol_of, read_source


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://alice:se(cret@host/x.csv", "http://alice:***@host/x.csv"),
        ("http://alice:se#cr/et?x@host/x.csv", "http://alice:***@host/x.csv"),
        ("https://alice:p@ss@host:8443/x.csv?v=1", "https://alice:***@host:8443/x.csv?v=1"),
        ("https://TOKEN123@host/x.csv", "https://***@host/x.csv"),
        ("https://host/x.csv?jwt=a.b.c&code=42&bearer=zz&access=yy&page=2",
         "https://host/x.csv?jwt=***&code=***&bearer=***&access=***&page=2"),
        ("simplecache::http://user:pw1@host/x.csv", "simplecache::http://user:***@host/x.csv"),
        # an @ in a path reads as a password holding "/": masked, the safe side of the doubt
        ("https://host/path/user@example.org/x.csv", "https://***@example.org/x.csv"),
        ("prices.csv", "prices.csv"),
    ],
)  # fmt: skip
def test_redaction_works_on_the_urls_structure(url, expected):
    assert redact_url(url) == expected


def test_a_registered_sources_secret_is_masked_wherever_it_appears():
    register_sources(["https://bob:c(o)rrect#horse@example.invalid/data.csv"])
    message = "aiohttp: cannot connect to bob:c(o)rrect#horse@example.invalid (reason: c(o)rrect#horse)"
    assert "c(o)rrect#horse" not in shown(message)


@pytest.mark.parametrize(
    "source, message",
    [
        ("simplecache::http://user:pw@127.0.0.1:9/x.csv", "chained URLs (PROTOCOL::URL) are not read"),
        ("zip://x.csv::http://127.0.0.1:9/a.zip", "chained URLs"),
        ("ftp://user:pw@127.0.0.1/x.csv", "the ftp:// protocol is not read"),
        ("local://x.csv", "the local:// protocol is not read"),
        ("memory://x.csv", "the memory:// protocol is not read"),
        ("file://otherhost/x.csv", "a file:// URL names a file on this machine"),
    ],
)
def test_protocols_without_bounds_are_refused_by_name(tmp_path, source, message):
    with pytest.raises(SourceError, match=re.escape(message)) as raised:
        read_source(source, root=tmp_path)
    assert "pw@" not in str(raised.value)


def test_file_urls_name_local_files(tmp_path):
    (tmp_path / "p.csv").write_text("date,close\n2020-01-01,1\n")
    assert protocol_of(f"file://{tmp_path}/p.csv") is None
    for url in (f"file://{tmp_path}/p.csv", f"file://localhost{tmp_path}/p.csv"):
        assert read_source(url)["close"].tolist() == [1]


passwords = st.text(alphabet=string.printable.strip(), min_size=3, max_size=24)


@settings(max_examples=400, deadline=None)
@given(
    user=st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=8),
    password=passwords,
    host=st.sampled_from(["example.org", "10.0.0.1", "h", "[::1]", "example.org:8080"]),
    path=st.text(alphabet=string.ascii_letters + "/._-", max_size=12),
    scheme=st.sampled_from(["http", "https", "s3", "simplecache::http"]),
)
def test_no_generated_password_is_shown_or_stored(user, password, host, path, scheme):
    assume("@" not in path and not any(password in part for part in (scheme, user, host, f"/{path}data.csv")))
    url = f"{scheme}://{user}:{password}@{host}/{path}data.csv"
    assert password not in redact_url(url)
    register_sources([url])
    for text in (f"error: cannot read {url}", f"'{url}' failed", f"({url})", url, f"password={password}"):
        assert password not in shown(text), text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_source_string_is_parsed_or_refused_cleanly(source):
    try:
        protocol_of(source)
    except SourceError:
        pass
    redact_url(source), shown(source)  # never an exception
