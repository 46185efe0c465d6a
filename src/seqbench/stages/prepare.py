"""The prepare stage: validated table -> model-ready arrays, fit on the training split only.

Each kind's `prepare(df, cfg)` returns (arrays, meta). They are written to
data/prepared/<dataset>/arrays.npz and meta.json (training/prepared.py), the one input of training, evaluation and
`seqbench predict` (which must transform new data exactly as training data was).
"""

from __future__ import annotations

from pathlib import Path

from seqbench.config import load_params
from seqbench.errors import ConfigError, SeqbenchError
from seqbench.io import atomic_dir
from seqbench.kinds import get_kind
from seqbench.paths import Paths
from seqbench.training.prepared import write_prepared


def prepare(name: str, params_path: Path | str = "params.yaml") -> dict:
    """Write data/prepared/<name>/; return its meta."""
    params_path = Path(params_path)
    cfg = load_params(params_path).dataset(name)
    paths = Paths(params_path.resolve().parent)
    df = read_validated(paths.validated(name), name)
    try:
        arrays, meta = get_kind(cfg.kind).prepare(df, cfg)
    except ConfigError as exc:  # a setting that does not fit the data: the kind names the key
        message = str(exc)
        raise ConfigError(message if message.startswith("datasets.") else f"datasets.{name}.{message}") from None
    meta = {"dataset": name, "kind": cfg.kind, **meta}
    with atomic_dir(paths.prepared(name)) as folder:
        write_prepared(folder, arrays, meta)
    return meta


def read_validated(path: Path, name: str):
    import pandas as pd

    if not path.exists():
        raise SeqbenchError(f"{path}: not found; run `seqbench validate {name}` first")
    return pd.read_parquet(path, engine="pyarrow")
