"""The ingest stage: read a dataset's source(s), write its canonical table and a manifest."""

from __future__ import annotations

from pathlib import Path

from seqbench.config import load_params
from seqbench.io import atomic_path, sha256_file
from seqbench.kinds import get_kind
from seqbench.paths import Paths
from seqbench.redact import redact_source
from seqbench.sources import SOURCE_TEXT_ATTR, read_source, write_raw_table


def ingest(name: str, params_path: Path | str = "params.yaml") -> dict:
    """Write data/raw/<name>.parquet and its manifest; return the manifest."""
    import json

    params_path = Path(params_path)
    params = load_params(params_path)
    cfg = params.dataset(name)
    paths = Paths(params_path.resolve().parent)
    kind = get_kind(cfg.kind)
    encoding = getattr(cfg, "encoding", "utf-8")
    fingerprints = source_fingerprints(cfg, paths.root)  # before reading: a later change is seen next run
    tables = {key: read_source(src, paths.root, encoding, params.ingest) for key, src in cfg.sources().items()}
    df = kind.canonicalize(tables, cfg)
    # The source's text of cells that did not parse (nulls in the table): beside the table, for
    # the validation page to show, never written into it.
    source_text = df.attrs.pop(SOURCE_TEXT_ATTR, None) or {}
    # Both files appear together or not at all: each is renamed into place only after both
    # were written in full, the table first (the inner block's file is renamed first), so a
    # manifest never describes a table that is not there yet.
    with atomic_path(paths.manifest(name)) as manifest_tmp, atomic_path(paths.raw(name)) as table_tmp:
        write_raw_table(df, table_tmp, source_text)
        manifest = {
            "dataset": name,
            "kind": cfg.kind,
            # Redacted: the manifest is read and shared; a token in a URL must not be. Nothing
            # compares this field (DVC tracks the table itself), so the real URL is not needed.
            "source": redact_source(cfg.source),
            "rows": int(len(df)),
            "columns": {c: str(t) for c, t in df.dtypes.items()},
            "sha256": sha256_file(table_tmp),
            "source_fingerprint": fingerprints,  # what `make run` compares (reingest_reason)
            # No time of ingestion: the manifest is an output DVC hashes, and a fresh run of the
            # same source must leave dvc.lock as it was (`seqbench datasets` shows the table's mtime).
        }
        if source_text:
            # Per column: how many cells did not parse, and the first few as the source wrote
            # them ([row of the table, text]).
            manifest["unparsed"] = source_text
        manifest_tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def source_fingerprints(cfg, root: Path) -> dict:
    """Each source's fingerprint (sources.fingerprint), by split ("all" for a single source)."""
    from seqbench.sources import fingerprint

    return {key or "all": fingerprint(source, root) for key, source in cfg.sources().items()}


def reingest_reason(name: str, params_path: Path | str = "params.yaml") -> str | None:
    """Why ingest@name must run although DVC sees nothing changed, or None.

    DVC cannot hash a source outside the project (a package's data, a file named by path, a
    URL), so the ingest stage does not declare it; `make run` asks this before every run
    instead: a URL is fetched every run (only fetching can tell), any other source when its
    fingerprint differs from the one its manifest recorded. With no manifest DVC runs it anyway.
    """
    import json

    from seqbench.sources import UNKNOWN

    params_path = Path(params_path)
    paths = Paths(params_path.resolve().parent)
    now = source_fingerprints(load_params(params_path).dataset(name), paths.root)
    if UNKNOWN in now.values():
        return "its source is a URL, fetched on every run (only fetching tells whether it changed)"
    try:
        recorded = json.loads(paths.manifest(name).read_text(encoding="utf-8")).get("source_fingerprint")
    except (OSError, ValueError):
        return None
    if recorded != now:
        return "its source changed since it was ingested"
    return None
