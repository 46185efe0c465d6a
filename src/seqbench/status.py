"""How far each dataset has got, read from the files the stages leave behind."""

from __future__ import annotations

import json
from pathlib import Path

from seqbench.paths import Paths
from seqbench.redact import redact_source


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def dataset_status(name: str, cfg, root: Path) -> dict:
    paths = Paths(root)
    source = redact_source(cfg.source)  # `seqbench status` prints it: no credentials
    source = source if isinstance(source, str) else ", ".join(f"{k}: {v}" for k, v in source.items())
    manifest = _read_json(paths.manifest(name))
    if manifest:
        raw = f"{manifest['rows']:,} rows, {manifest['ingested_at'][:16].replace('T', ' ')}"
    else:
        raw = "not ingested"
    report = _read_json(paths.validation_report(name))
    if report is None:
        validated = "not validated"
    elif report.get("success"):
        validated = f"ok: {report['rows_validated']:,} rows, {report['rows_quarantined']:,} quarantined"
    else:
        failed = [c["check"] for c in report.get("checks", []) if not c["success"]]
        validated = f"FAILED: {', '.join(failed) or 'too much quarantined'}"
    return {"source": source, "raw": raw, "validated": validated}
