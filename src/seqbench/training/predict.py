"""Use a trained run on new data: `seqbench predict`.

Weights are read with torch.load(weights_only=True) from model.pt (a plain state dict), so
loading a model never unpickles arbitrary code; the architecture comes from config.json.
"""

from __future__ import annotations

import json
from pathlib import Path

from seqbench.errors import SeqbenchError
from seqbench.paths import Paths
from seqbench.training.runs import METRICS, read_run_metrics

BATCH = 512


def load_run(run_dir: Path):
    """(model in eval mode, config) of a finished run folder."""
    import torch

    from seqbench.models import model_from_config

    run_dir = Path(run_dir)
    try:
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        state = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise SeqbenchError(f"{run_dir}: not a finished training run ({Path(exc.filename).name} missing)") from None
    except Exception as exc:  # noqa: BLE001 - an unpickling refusal or a corrupt file
        raise SeqbenchError(f"{run_dir}: cannot load the model ({type(exc).__name__}: {exc})") from None
    model = model_from_config(config["model"])
    model.load_state_dict(state)
    return model.eval(), config


def best_run(models_dir: Path) -> Path:
    """The finished run of a dataset with the lowest validation loss (never the test loss)."""
    runs = []
    for metrics_file in Path(models_dir).glob(f"*/seed*/{METRICS}"):
        runs.append((read_run_metrics(metrics_file.parent)["best_val_loss"], metrics_file.parent))
    if not runs:
        raise SeqbenchError(f"{models_dir}: no finished training runs; run `dvc repro` first")
    return min(runs)[1]


def resolve_run(model: str, root: Path) -> Path:
    """A run folder from what the user typed: a run folder, its model.pt, or a dataset name."""
    path = Path(model)
    if not path.is_absolute():
        path = root / path
    if path.is_file():
        path = path.parent
    if (path / "config.json").exists():
        return path
    models_dir = Paths(root).runs(model)
    if models_dir.is_dir():
        return best_run(models_dir)
    raise SeqbenchError(f"{model}: neither a training run folder nor a dataset with trained models")


def predict_outputs(model, dataset):
    """Model outputs for every item of `dataset`: forecasts [N] or probabilities [N, classes]."""
    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    outputs = []
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=BATCH, shuffle=False, collate_fn=model.collate_fn):
            outputs.append(model.predict_step(batch).numpy())
    return np.concatenate(outputs) if outputs else np.zeros(0)


def predict_file(
    model: str, input_path: str, output_path: str, root: Path = Path("."), limits=None
) -> tuple[Path, int]:
    """Predict for a canonical-schema file, read within `limits` (params.yaml's `ingest:`); write
    CSV or Parquet; return (run used, rows)."""
    from seqbench.io import atomic_path
    from seqbench.kinds import get_kind
    from seqbench.redact import redact_url
    from seqbench.sources import read_source

    run_dir = resolve_run(model, root)
    net, config = load_run(run_dir)
    meta = config["preprocessing"]
    kind = get_kind(config["kind"])
    table = read_source(input_path, root, limits=limits)
    try:
        dataset, rows = kind.predict_inputs(table, meta)
    except SeqbenchError as exc:
        raise SeqbenchError(
            f"{redact_url(input_path)} does not fit this {config['kind']} model ({run_dir}): {exc}"
        ) from None
    predictions = kind.format_predictions(rows, predict_outputs(net, dataset), meta)
    output = Path(output_path)
    suffix = output.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise SeqbenchError(f"{output_path}: write predictions to a .csv or .parquet file")
    with atomic_path(output) as tmp:
        if suffix == ".csv":
            predictions.to_csv(tmp, index=False)
        else:
            predictions.to_parquet(tmp, index=False)
    return run_dir, len(predictions)
