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
    if small := small_splits(meta["sizes"]):
        meta["small_splits"] = small  # only then: a large enough dataset's meta.json is as before
    with atomic_dir(paths.prepared(name)) as folder:
        write_prepared(folder, arrays, meta)
    return meta


# The fewest test items (forecast windows, texts or clips) a verdict should rest on. With n test
# items, one item more or less right moves accuracy or macro-F1 by about 1/n, and the verdict calls
# a difference inside the ROPE (0.01 by default, settings.ROPE_DEFAULTS: "one test example in a
# hundred") practically equivalent: below 100 items a single item's flip is wider than the ROPE,
# so "equivalent" cannot be shown and one item can decide "better". Forecasts are scored on
# consecutive steps that share news, and the verdict's bootstrap resamples blocks of them: under
# 100 steps it has only a dozen or so blocks to resample, too few for its interval to be trusted.
# Only the test split counts: the verdicts are about it alone (validation chooses epochs and the
# best baseline; with `validation: kfold` it is not even held out).
MIN_TEST_ITEMS = 100


def small_splits(sizes: dict) -> dict:
    """{split: {"size": n, "needed": MIN_TEST_ITEMS}} for a test split too small for a verdict;
    empty when it is large enough."""
    size = int(sizes.get("test", 0))
    return {"test": {"size": size, "needed": MIN_TEST_ITEMS}} if size < MIN_TEST_ITEMS else {}


def small_split_warnings(meta: dict) -> list[str]:
    """One line per split of `meta["small_splits"]`: the dataset, the split, its size, the size
    needed and what to change. A warning, not an error: the pipeline still runs on small data."""
    name = meta["dataset"]
    return [
        f"{name}: the {split} split has {s['size']:,} items, fewer than the {s['needed']:,} a verdict needs "
        f"(one item moves a test score by about 1/{s['size']:,}, more than the default ROPE of 0.01); the verdict "
        f"will rest on too little: add rows to it, or raise datasets.{name}.splits.{split} where the "
        "split is carved from the data"
        for split, s in meta.get("small_splits", {}).items()
    ]


def read_validated(path: Path, name: str):
    import pandas as pd

    if not path.exists():
        raise SeqbenchError(f"{path}: not found; run `seqbench validate {name}` first")
    return pd.read_parquet(path, engine="pyarrow")
