"""A training run's folder: models/<dataset>/runs/<cell>/seed<k>/, made once and reused.

`train_run` reads what a run needs (the prepared data, the budget the search chose), holds the
folder's lock, and reuses a finished run made with the same config (settings, data, code digest);
a folder of other settings, or a corrupt one, is started over; an interrupted one resumes.
What the run computes is training/fit.py's.
"""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from seqbench.errors import SeqbenchError
from seqbench.locks import run_folder_lock
from seqbench.paths import Paths
from seqbench.training.prepared import load_prepared
from seqbench.training.specs import RunSpec

# Written last, atomically: its presence marks a run finished.
METRICS = "metrics.json"
# The run's measured times, beside its metrics (timings.py says why they are apart).
TIMES = "timings.json"


def train_run(
    name: str,
    cell: str,
    seed: int,
    params_path: Path | str = "params.yaml",
    threads: int = 1,
    numerics: str | None = None,
) -> dict:
    """Train one run (or finish an interrupted one) with its cell's chosen budget (the search
    stage's result) in its run folder, checkpoints in place; return its metrics. `numerics`
    (native | portable; params.yaml's train.numerics by default) is set up before the run's
    first torch computation: in this process when it can be, else the run trains in a fresh
    one (numerics.py)."""
    from seqbench.numerics import in_mode

    numerics = numerics or configured_numerics(params_path)
    return in_mode(numerics, _train_run, name, cell, seed, str(params_path), threads, numerics)


def configured_numerics(params_path: Path | str) -> str:
    """params.yaml's train.numerics."""
    from seqbench.config import load_params

    return load_params(params_path).train.numerics


def _train_run(name: str, cell: str, seed: int, params_path: str, threads: int, numerics: str) -> dict:
    from seqbench.training.fit import fit_run  # Lightning: only where a run trains

    with claimed_run(params_path, name, cell, seed, threads, numerics) as run:
        if run.finished is not None:
            return run.finished
        metrics = fit_run(run.spec, run.model, run.folder, run.config)
        write_run_metrics(metrics, run.folder)
        return metrics


def write_run_metrics(metrics: dict, folder: Path) -> None:
    """A finished run's record: its results in metrics.json, its times in timings.json."""
    from seqbench.timings import write_split

    write_split(metrics, folder / METRICS, folder / TIMES)


def with_times(metrics: dict, folder: Path) -> dict:
    from seqbench.timings import merged, read_times

    return merged(metrics, read_times(folder / TIMES))


@dataclass(frozen=True)
class Claim:
    """A run about to be trained here or shipped: its spec, initial model, config and folder,
    and its metrics when the folder already holds it finished with this config."""

    spec: RunSpec
    model: object
    config: dict
    folder: Path
    finished: dict | None


@contextmanager
def claimed_run(params_path: Path | str, name: str, cell: str, seed: int, threads: int, numerics: str | None = None):
    """A Claim on a run, its folder's lock held meanwhile: one writer per run folder, so a second
    process on the same run waits, then reuses the result. A folder made with another config is
    started over (finished_or_reset). `numerics`: params.yaml's train.numerics by default."""
    from seqbench.training.fit import run_setup

    paths = Paths(Path(params_path).resolve().parent)
    spec = run_spec(paths, name, cell, seed, threads, numerics or configured_numerics(params_path))
    model, config = run_setup(spec)
    folder = paths.run_dir(name, cell, seed)
    with run_folder_lock(paths.root, run_key(name, cell, seed)):
        yield Claim(spec, model, config, folder, finished_or_reset(folder, config))


def run_key(name: str, cell: str, seed: int) -> str:
    return f"{name}/{cell}/seed{seed}"


def run_spec(paths: Paths, name: str, cell: str, seed: int, threads: int = 1, numerics: str = "native") -> RunSpec:
    """A run of `cell` with the configuration the search stage chose for it, on the prepared data."""
    budget = chosen_budget(paths, name, cell)
    cross_validation = chosen_cross_validation(paths, name, cell) if budget.validation == "kfold" else None
    prepared = load_prepared(paths.prepared(name))
    return RunSpec(name, cell, seed, budget, prepared, cross_validation, threads, numerics)


def finished_or_reset(run_dir: Path, config: dict) -> dict | None:
    """The metrics of a finished run made with `config`; otherwise None, with the folder
    removed unless it holds a resumable run of this config."""
    if not same_run(run_dir, config):
        start_over(run_dir)  # other settings or data: start over
    elif (run_dir / METRICS).exists():
        finished = read_metrics(run_dir / METRICS)
        if finished is not None:
            return finished
        start_over(run_dir)  # a corrupt record of a finished run: train again
    return None


def start_over(run_dir: Path) -> None:
    if run_dir.exists():
        shutil.rmtree(run_dir)


def read_run_metrics(run_dir: Path) -> dict:
    """The metrics of a finished run, for evaluation and prediction: a missing or corrupt file
    is an error that names the run (training reuses a run only through read_metrics)."""
    path = run_dir / METRICS
    try:
        return with_times(json.loads(path.read_text(encoding="utf-8")), run_dir)
    except FileNotFoundError:
        raise SeqbenchError(f"{run_dir}: not a finished training run (no {METRICS})") from None
    except ValueError as exc:
        raise SeqbenchError(f"{path}: unreadable ({exc}); train the run again") from None


def read_metrics(path: Path) -> dict | None:
    """A finished run's metrics, or None with a warning when the file is empty or corrupt (a
    crash mid-write on a file system that lost it): the run is then trained again."""
    import warnings

    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(metrics, dict) and "best_val_loss" in metrics:
            return with_times(metrics, path.parent)
        problem = "not a run's metrics"
    except (OSError, ValueError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    warnings.warn(f"{path}: unreadable ({problem}); training this run again")
    return None


def same_run(run_dir: Path, config: dict) -> bool:
    """Was run_dir made by a run with exactly this config (budget, seed, data), and can its
    checkpoint be resumed from? A corrupt config or checkpoint starts it over, with a warning."""
    import warnings

    path = run_dir / "config.json"
    if not path.exists():
        return False
    try:
        same = json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(config))
    except (OSError, ValueError) as exc:
        warnings.warn(f"{path}: unreadable ({type(exc).__name__}: {exc}); starting this run over")
        return False
    return same and resumable(run_dir / "checkpoints" / "last.ckpt")


def resumable(checkpoint: Path) -> bool:
    """No checkpoint yet, or one that loads (as tensors and plain values only)."""
    import warnings

    import torch

    if not checkpoint.exists():
        return True
    try:
        torch.load(checkpoint, map_location="cpu", weights_only=True)
        return True
    except Exception as exc:  # noqa: BLE001 - any unloadable checkpoint is started over
        warnings.warn(f"{checkpoint}: unreadable ({type(exc).__name__}); starting this run over")
        return False


def chosen_budget(paths: Paths, name: str, cell: str):
    """The budget the search chose for `cell` (reports/search/<dataset>.json)."""
    from seqbench.settings import Budget

    path = paths.search_result(name)
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        config = dict(result["cells"][cell]["config"])
    except FileNotFoundError:
        raise SeqbenchError(f"{path}: not found; run `dvc repro search@{name}` first") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise SeqbenchError(
            f"{path}: no configuration for {cell} ({type(exc).__name__}: {exc}); rerun `dvc repro search@{name}`"
        ) from None
    return Budget(**config)


def chosen_cross_validation(paths: Paths, name: str, cell: str) -> dict:
    """The cross-validation behind a cell's chosen configuration (validation: kfold): its value,
    untrained loss, fold results and epoch count."""
    result = json.loads(paths.search_result(name).read_text(encoding="utf-8"))
    try:
        return result["cells"][cell]["cross_validation"]
    except KeyError:
        raise SeqbenchError(
            f"{paths.search_result(name)}: no cross-validation for {cell}; rerun `dvc repro search@{name}`"
        ) from None


# ---- a run still improving when its epochs ran out -------------------------------------------


def read_run_config(run_dir: Path) -> dict:
    """A run's config.json (its budget, and with k-fold its cross-validation)."""
    path = run_dir / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeqbenchError(f"{run_dir}: not a training run (no config.json)") from None
    except ValueError as exc:
        raise SeqbenchError(f"{path}: unreadable ({exc}); train the run again") from None


def cut_off(metrics: dict, config: dict) -> dict | None:
    """Where a finished run was still improving when its epochs ran out: {"validation",
    "best_epoch", "max_epochs", "patience"}; None when it was not (or, from an older search
    result, cannot be told).

    Holdout: early stopping ends a run `patience` epochs after its best epoch (0 = the untrained
    model). A run that ran all max_epochs with its best epoch within the last `patience` of them
    (best_epoch > max_epochs - patience) was cut off, not early-stopped: early stopping had not
    yet judged it, its validation loss may still have been falling, and more epochs might have
    given it a better model. A run stopped early had its best epoch `patience` epochs before
    its end, so it is never marked.

    k-fold: a run trains for the steps its cell's cross-validation chose and keeps its last
    epoch, so its own best epoch says nothing. The cross-validation does: every fold trained
    with early stopping up to fold_max_epochs, and the chosen epoch is the lowest point of the
    folds' mean validation curve (mean_val_losses, epoch 0 the untrained model). A lowest point
    within the last `patience` of fold_max_epochs means the folds ran out of epochs while the
    mean was still falling: the epoch every seed trains to is the budget's, not the data's. The
    mean curve covers only the epochs every fold reached, so this needs every fold to have run
    all fold_max_epochs: where one fold stopped early, the curve ends there whatever the budget,
    and more epochs would not move the chosen epoch (not marked). All seeds of a cell share its
    cross-validation, so all its runs are marked alike. A search result from before
    fold_max_epochs was recorded: unknown, not marked."""
    budget = config.get("budget") or {}
    patience = budget.get("patience")
    cross_validation = config.get("cross_validation")
    if metrics.get("validation") == "kfold" or cross_validation:
        cross_validation = cross_validation or {}
        validation, max_epochs = "kfold", cross_validation.get("fold_max_epochs")
        curve = cross_validation.get("mean_val_losses")
        folds = cross_validation.get("folds") or []
        # The curve's lowest point (its first, as the search chose it): the refit epochs of an
        # older result without the curve.
        best = curve.index(min(curve)) if curve else cross_validation.get("refit_epochs")
        # Every fold ran out of epochs: the curve (epoch 0 the untrained model) reaches the budget.
        reached = len(curve) - 1 if curve else min((f.get("epochs") or 0 for f in folds), default=0)
        ran_all = max_epochs is not None and reached >= max_epochs
    else:
        validation, max_epochs, best = "holdout", budget.get("max_epochs"), metrics.get("best_epoch")
        ran_all = max_epochs is not None and (metrics.get("epochs_run") or 0) >= max_epochs
    if not (max_epochs and patience and best is not None and ran_all) or best <= max_epochs - patience:
        return None
    return {"validation": validation, "best_epoch": best, "max_epochs": max_epochs, "patience": patience}


def still_improving(metrics: dict, config: dict) -> bool:
    """Was the run still improving when its epochs ran out (cut_off)? Computed from a finished
    run's metrics and config, never stored: a run folder from any version reads the same."""
    return cut_off(metrics, config) is not None
