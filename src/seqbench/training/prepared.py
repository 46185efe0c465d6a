"""The one reader and writer of a prepared dataset (data/prepared/<dataset>/): arrays.npz and
meta.json, written by the prepare stage and read by search, training, evaluation, `seqbench
predict` and the Dask workers (which receive arrays.npz as bytes)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from seqbench.errors import SeqbenchError

ARRAYS, META = "arrays.npz", "meta.json"


@dataclass(frozen=True)
class Prepared:
    """A prepared dataset: its arrays, its meta, and the sha256 of arrays.npz, which runs and
    studies record as the data they were made from."""

    arrays: dict
    meta: dict
    sha256: str
    npz: bytes = field(repr=False)  # arrays.npz as on disk: what a worker without the disk receives

    @classmethod
    def from_bytes(cls, npz: bytes, meta: dict) -> Prepared:
        import io

        import numpy as np

        with np.load(io.BytesIO(npz), allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        return cls(arrays, meta, hashlib.sha256(npz).hexdigest(), npz)


def load_prepared(folder: Path | str) -> Prepared:
    """A prepared dataset, read from its folder: one read of arrays.npz gives both the arrays
    and their hash."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        npz = (folder / ARRAYS).read_bytes()
    except FileNotFoundError:
        raise SeqbenchError(f"{folder}: no prepared data; run `seqbench prepare` first") from None
    return Prepared.from_bytes(npz, meta)


def write_prepared(folder: Path, arrays: dict, meta: dict) -> None:
    """Write arrays.npz and meta.json into `folder` (the prepare stage's temporary folder)."""
    import numpy as np

    np.savez(folder / ARRAYS, **arrays)
    (folder / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
