"""The ingest stage: read a dataset's source(s), write its canonical table and a manifest."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from seqbench.config import load_params
from seqbench.io import atomic_path, sha256_file
from seqbench.kinds import get_kind
from seqbench.paths import Paths
from seqbench.redact import redact_source
from seqbench.sources import read_source


def ingest(name: str, params_path: Path | str = "params.yaml") -> dict:
    """Write data/raw/<name>.parquet and its manifest; return the manifest."""
    import json

    params_path = Path(params_path)
    params = load_params(params_path)
    cfg = params.dataset(name)
    paths = Paths(params_path.resolve().parent)
    kind = get_kind(cfg.kind)
    encoding = getattr(cfg, "encoding", "utf-8")
    tables = {key: read_source(src, paths.root, encoding, params.ingest) for key, src in cfg.sources().items()}
    df = kind.canonicalize(tables, cfg)
    # Both files appear together or not at all: each is renamed into place only after both
    # were written in full, the table first (the inner block's file is renamed first), so a
    # manifest never describes a table that is not there yet.
    with atomic_path(paths.manifest(name)) as manifest_tmp, atomic_path(paths.raw(name)) as table_tmp:
        df.to_parquet(table_tmp, engine="pyarrow", index=False)
        manifest = {
            "dataset": name,
            "kind": cfg.kind,
            # Redacted: the manifest is read and shared; a token in a URL must not be. Nothing
            # compares this field (DVC tracks the table itself), so the real URL is not needed.
            "source": redact_source(cfg.source),
            "rows": int(len(df)),
            "columns": {c: str(t) for c, t in df.dtypes.items()},
            "sha256": sha256_file(table_tmp),
            "ingested_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        manifest_tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
