"""The one reader of a prepared dataset (data/prepared/<dataset>/): arrays.npz and meta.json,
written by the prepare stage and read by search, training, evaluation and `seqbench predict`."""

from __future__ import annotations

import json
from pathlib import Path

from seqbench.errors import SeqbenchError


def load_prepared(folder: Path | str) -> tuple[dict, dict]:
    """(arrays, meta) of a prepared dataset."""
    import numpy as np

    folder = Path(folder)
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        with np.load(folder / "arrays.npz", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise SeqbenchError(f"{folder}: no prepared data; run `seqbench prepare` first") from None
    return arrays, meta
