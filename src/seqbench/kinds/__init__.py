"""Everything that differs by kind of data lives in one module per kind.

Each module provides: `COLUMNS` (the canonical columns), `GROUP_KEY` (the unit quarantined together, or None),
`canonicalize(tables, cfg)`, `add_check_columns(df, cfg)`, `checks(cfg, df)` and
`summary(df, cfg)`. The ingest and validate stages are generic and ask the kind.
"""

from importlib import import_module


def get_kind(name: str):
    return import_module(f"seqbench.kinds.{name}")
