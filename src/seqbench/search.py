"""Equal-budget hyperparameter search per cell (Optuna), and the configuration it chooses.

Each cell gets its own study with the same number of trials over the same space, a seeded TPE
sampler and a median pruner (optuna-integration's Lightning pruning callback). A trial trains on
the training split and is scored by its best validation loss; the test split is never read.

Trials are asked in fixed-size rounds (`search.parallel` per cell). A trial's sampler is seeded by
(seed, trial number) and its pruner compares it only with trials finished before its round, so
which trials are sampled and pruned does not depend on how many workers run them, or on timing.

Files:
  models/<dataset>/search/<cell>.journal  the study (Optuna's journal storage): a killed search
                                          resumes; a changed space, budget or data starts over
  reports/search/<dataset>.json           the chosen configuration per cell and every trial
                                          (small, in git; training reads it)
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from pathlib import Path

from seqbench.errors import SeqbenchError
from seqbench.paths import Paths

INT_KEYS = {"batch_size", "param_budget", "hidden_size", "embedding_size", "layers"}
LSTM_ONLY = {"forget_bias"}  # the GRU has no forget gate


# ---- the space -----------------------------------------------------------------------------

def cell_space(space: dict, cell: str) -> dict:
    """The dimensions a cell's trials sample (fixed values and LSTM-only keys left out)."""
    from seqbench.settings import Range

    return {key: value for key, value in space.items()
            if isinstance(value, (Range, list)) and not (key in LSTM_ONLY and cell != "lstm")}


def fixed_values(space: dict) -> dict:
    """The space's fixed values: they override the budget in every trial and in the result."""
    from seqbench.settings import Range

    return {key: value for key, value in space.items() if not isinstance(value, (Range, list))}


def distributions(space: dict, cell: str) -> dict:
    """Optuna distributions of a cell's sampled dimensions."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    found = {}
    for key, value in cell_space(space, cell).items():
        if isinstance(value, list):
            found[key] = CategoricalDistribution(value)
        elif key in INT_KEYS:
            found[key] = IntDistribution(int(value.low), int(value.high), log=value.log)
        else:
            found[key] = FloatDistribution(value.low, value.high, log=value.log)
    return found


def trial_budget(base, space: dict, sampled: dict):
    """The budget of a trial: the dataset's budget, the space's fixed values, the sampled ones."""
    return base.model_copy(update={**fixed_values(space), **sampled})


# ---- one trial (a Prefect task; runs in a worker) ------------------------------------------

def search_trial(name: str, cell: str, number: int, sampled: dict, history: list[dict],
                 params_path: str = "params.yaml", threads: int = 1) -> dict:
    """Train trial `number` of a cell with the `sampled` values. `history`: the trials finished
    before this one's round (their per-epoch losses), which the median pruner compares with."""
    from seqbench.config import load_params
    from seqbench.prepare import load_prepared

    params_path = Path(params_path)
    params = load_params(params_path)
    setting = params.search(name)
    arrays, meta = load_prepared(Paths(params_path.resolve().parent).prepared(name))
    budget = trial_budget(params.budget(name), setting.space, sampled)
    return run_trial(name, cell, number, arrays, meta, budget, setting, history, threads)


def run_trial(name: str, cell: str, number: int, arrays: dict, meta: dict, budget, setting, history: list[dict],
              threads: int = 1) -> dict:
    """A trial from its inputs alone (search_trial's, or shipped to a Dask worker)."""
    import torch

    torch.set_num_threads(threads)
    label = f"{name} {cell} trial {number}"
    started = time.perf_counter()
    if budget.validation == "kfold":
        # The pruner's steps are folds: it may stop a trial after any fold.
        result = cross_validate(arrays, meta, cell, budget, setting.seed, label, pruning_trial(setting, history, 0))
    else:
        result = holdout_trial(arrays, meta, cell, budget, setting.seed, label,
                               pruning_trial(setting, history, setting.prune_after))
    if result["state"] == "pruned":
        steps = len(result["val_losses"])
        where = f"fold {steps} of {budget.folds}" if result["steps"] == "folds" else f"{steps} epochs"
        print(f"{label}: pruned after {where}", file=sys.stderr, flush=True)
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def holdout_trial(arrays: dict, meta: dict, cell: str, budget, seed: int, label: str, trial) -> dict:
    """Train on the training split, score on the validation split; the pruner sees every
    epoch's validation loss."""
    import optuna

    from seqbench.train import fit_trial

    result = fit_trial(arrays, meta, cell, budget, seed, label, [pruning_callback(trial)],
                       stops=(optuna.TrialPruned,))
    # The pruning callback reported every epoch's loss, the one it pruned at included.
    reported = trial.study.get_trials(deepcopy=False)[-1].intermediate_values
    result["val_losses"] = [reported[k] for k in sorted(reported)]
    result["epochs"] = len(result["val_losses"])
    result["steps"] = "epochs"
    result["state"] = "pruned" if result.pop("stopped") else "complete"
    if result["state"] == "complete":
        result["value"] = best_value(result)
    return result


def cross_validate(arrays: dict, meta: dict, cell: str, budget, seed: int, label: str, trial) -> dict:
    """Stratified k-fold cross-validation of one configuration over the training and validation
    items. Each fold trains with early stopping on its held-out part. The folds' validation
    losses are averaged epoch by epoch (the untrained model is epoch 0); the value is the lowest
    mean, and its epoch is the epoch count of the final fit on all items. A configuration that
    is good only at each fold's own lucky epoch does not score well: the final fit cannot pick
    its epoch. After each fold the value so far goes to the pruner (step = fold)."""
    from seqbench.train import fit_trial

    folds, curves, values = [], [], []
    for k, (train_items, val_items) in enumerate(fold_items(arrays, budget.folds, seed)):
        fold_arrays = {**arrays, "idx_train": train_items, "idx_val": val_items}
        fit = fit_trial(fold_arrays, meta, cell, budget, seed, f"{label} fold {k + 1}/{budget.folds}")
        curves.append([fit["untrained_val_loss"], *fit["val_losses"]])
        folds.append({"best_value": best_value(fit), "epochs": len(fit["val_losses"])})
        mean = mean_curve(curves)
        if not all(math.isfinite(v) for v in mean):
            raise SeqbenchError(f"{label}: fold {k + 1} ended with a non-finite validation loss")
        values.append(min(mean))
        trial.report(values[-1], k)
        if trial.should_prune():
            break
    mean = mean_curve(curves)
    result = {"val_losses": values, "steps": "folds", "folds": folds, "mean_val_losses": mean,
              "parameters": fit["parameters"], "hidden_size": fit["hidden_size"],
              "epochs": sum(f["epochs"] for f in folds), "untrained_val_loss": mean[0]}
    if len(folds) < budget.folds:
        result["state"] = "pruned"
    else:
        result["state"] = "complete"
        result["value"] = values[-1]
        # At least one epoch: a final fit of none would be the untrained model, which the
        # comparison then marks void (its cross-validated loss did not beat the untrained one).
        result["refit_epochs"] = max(1, mean.index(values[-1]))
    return result


def mean_curve(curves: list[list[float]]) -> list[float]:
    """The folds' validation loss averaged epoch by epoch, over the epochs every fold reached
    (each fold stopped `patience` epochs after its own best, so the region near every fold's
    best is covered)."""
    import statistics

    reached = min(len(curve) for curve in curves)
    return [statistics.fmean(curve[epoch] for curve in curves) for epoch in range(reached)]


def fold_items(arrays: dict, folds: int, seed: int) -> list[tuple]:
    """(training items, held-out items) of each fold: the training and validation items pooled
    and split by class (the same folds for every trial and both cells)."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    pool = np.sort(np.concatenate([arrays["idx_train"], arrays["idx_val"]]))
    labels = arrays["labels"][pool]
    present = np.bincount(labels)
    smallest = int(present[present > 0].min()) if len(pool) else 0
    if smallest < folds:
        raise SeqbenchError(f"train.folds: {folds} folds need at least {folds} training and validation "
                            f"items of every class; the smallest class has {smallest}")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(pool[fit], pool[held_out]) for fit, held_out in splitter.split(pool, labels)]


def pruning_trial(setting, history: list[dict], warmup: int):
    """A trial in a throwaway in-memory study that holds `history`: the pruner sees exactly
    those trials, whichever worker this runs on. `warmup`: steps before it may prune."""
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=warmup)
              if setting.pruner == "median" else optuna.pruners.NopPruner())
    study = optuna.create_study(direction="minimize", pruner=pruner)
    for past in history:
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=past["value"],
                                     intermediate_values=dict(enumerate(past["val_losses"]))))
    return study.ask()


def pruning_callback(trial):
    """optuna-integration's Lightning pruning callback, as a callback of the `pytorch_lightning`
    package this project trains with (the integration subclasses `lightning.pytorch`'s; both
    packages' Trainers call the same hooks)."""
    import pytorch_lightning as pl
    from optuna_integration import PyTorchLightningPruningCallback

    class PruningCallback(PyTorchLightningPruningCallback, pl.Callback):
        pass

    return PruningCallback(trial, monitor="val_loss")


# ---- the studies (in the flow's process) ---------------------------------------------------

def fingerprint(params, name: str, paths: Paths) -> dict:
    """What a study's trials depend on; when any of it changes, the search starts over. The
    trial count is left out: raising it continues the study."""
    from seqbench.io import sha256_file
    from seqbench.stages import code_sha256

    setting = params.search(name).model_dump(mode="json", exclude={"trials"})
    # The code digest is the training runs' one: a trial is a short training run, and its
    # closure holds this file too (how trials are asked and scored).
    return {"search": setting, "budget": params.budget(name).model_dump(mode="json"),
            "data_sha256": sha256_file(paths.prepared(name) / "arrays.npz"),
            "code_sha256": code_sha256(params.dataset(name).kind)}


def open_study(path: Path, cell: str, wanted: dict):
    """The cell's study at `path`, started over when its fingerprint differs or its file is
    corrupt (with a warning). Trials left running by a killed search are marked failed."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path.parent.mkdir(parents=True, exist_ok=True)

    def load():
        storage = JournalStorage(JournalFileBackend(str(path)))
        return optuna.create_study(storage=storage, study_name=cell, direction="minimize", load_if_exists=True)

    try:
        study = load()
        stale = study.trials and study.user_attrs.get("fingerprint") != wanted
    except Exception as exc:  # noqa: BLE001 - any unreadable journal is started over
        warnings.warn(f"{path}: the study file is unreadable ({type(exc).__name__}: {exc}); starting the search over")
        stale = True
    if stale:
        path.unlink(missing_ok=True)
        study = load()
    study.set_user_attr("fingerprint", wanted)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        study.tell(trial.number, state=TrialState.FAIL)  # left by a killed search; asked again
    return study


def finished(study) -> list:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def history_of(study) -> list[dict]:
    """The complete trials, as the pruner of a trial in the next round sees them."""
    from optuna.trial import TrialState

    return [{"value": t.value, "val_losses": [t.intermediate_values[k] for k in sorted(t.intermediate_values)]}
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]


def ask(study, setting, cell: str, index: int):
    """The `index`-th trial of a cell (counting finished ones), sampled by TPE seeded with
    (seed, index): the same trials on any machine, and after a resume too."""
    import optuna

    study.sampler = optuna.samplers.TPESampler(seed=setting.seed * 100_003 + index,
                                               n_startup_trials=setting.startup_trials,
                                               constant_liar=True)
    return study.ask(distributions(setting.space, cell))


def tell(study, trial, result: dict) -> None:
    """Record a trial's outcome: its losses per epoch, then its value (the best validation loss,
    the untrained model counted as epoch 0, as training does) or that it was pruned."""
    from optuna.trial import TrialState

    for step, loss in enumerate(result.get("val_losses", [])):
        trial.report(loss, step)
    for key in ("hidden_size", "parameters", "epochs", "seconds", "untrained_val_loss", "refit_epochs", "folds",
                "mean_val_losses"):
        if key in result:
            trial.set_user_attr(key, result[key])
    if result["state"] == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, result["value"])


def best_value(result: dict) -> float:
    losses = [result["untrained_val_loss"], *result["val_losses"]]
    value = min(losses)
    if not math.isfinite(value):
        raise SeqbenchError(f"a search trial ended with validation loss {value}")
    return value


# ---- the result file -----------------------------------------------------------------------

def cell_result(study, cell: str, base, setting, meta: dict) -> dict:
    """The chosen configuration of a cell (its best trial's, or the fixed budget without
    trials) and every trial, in trial order."""
    from seqbench.models import build_model, param_budget

    trials = [trial_record(t) for t in finished(study)] if study is not None else []
    complete = [t for t in trials if t["state"] == "complete"]
    best = min(complete, key=lambda t: t["value"]) if complete else None
    budget = trial_budget(base, setting.space, best["params"] if best else {})
    model = build_model(meta, cell, budget)
    # Written out: training rebuilds the cell from this alone.
    config = {**budget.model_dump(mode="json"), "hidden_size": model.hparams.hidden_size}
    if budget.size_match == "params":
        config["param_budget"] = param_budget(meta, budget)
    found = {"config": config, "parameters": model.sized_parameters(),
             "best_trial": best["number"] if best else None, "best_value": best["value"] if best else None,
             "wall_seconds": round(sum(t["seconds"] or 0 for t in trials), 3), "trials": trials}
    if budget.validation == "kfold" and best:
        # Training fits all items for the epochs the folds chose, with nothing left to stop on.
        config["max_epochs"] = best["refit_epochs"]
        found["cross_validation"] = {key: best[key] for key in ("value", "untrained_val_loss", "refit_epochs", "folds",
                                                                "mean_val_losses")}
    return found


def trial_record(trial) -> dict:
    attrs = trial.user_attrs
    losses = [trial.intermediate_values[k] for k in sorted(trial.intermediate_values)]
    value = trial.value if trial.value is not None else (losses[-1] if losses else None)
    return {"number": trial.number, "state": trial.state.name.lower(), "value": value,
            "params": dict(trial.params), "hidden_size": attrs.get("hidden_size"),
            "parameters": attrs.get("parameters"), "epochs": attrs.get("epochs"),
            "seconds": attrs.get("seconds"), "val_losses": losses,
            **{key: attrs[key] for key in ("untrained_val_loss", "refit_epochs", "folds", "mean_val_losses")
               if key in attrs}}


def write_result(name: str, params_path: Path | str, studies: dict) -> dict:
    """Write reports/search/<dataset>.json from the cells' studies (none: the fixed budget)."""
    from seqbench.config import load_params
    from seqbench.io import write_json
    from seqbench.prepare import load_prepared

    params = load_params(params_path)
    setting = params.search(name)
    paths = Paths(Path(params_path).resolve().parent)
    _, meta = load_prepared(paths.prepared(name))
    base = params.budget(name)
    cells = {cell: cell_result(studies.get(cell), cell, base, setting, meta) for cell in params.train.cells}
    summary = search_summary(name, setting, cells)
    write_json(summary, paths.search_result(name))
    return summary


def search_summary(name: str, setting, cells: dict) -> dict:
    config = next(iter(cells.values()))["config"]
    kfold = config["validation"] == "kfold"
    pruner = None
    if setting.pruner == "median" and setting.trials:
        pruner = ({"name": "MedianPruner", "after_each": "fold"} if kfold else
                  {"name": "MedianPruner", "warmup_epochs": setting.prune_after})
    return {"dataset": name, "trials": setting.trials, "size_match": config["size_match"],
            "validation": {"method": "kfold", "folds": config["folds"]} if kfold else {"method": "holdout"},
            "sampler": {"name": "TPESampler", "seed": setting.seed, "startup_trials": setting.startup_trials,
                        "parallel": setting.parallel},
            "pruner": pruner, "space": json.loads(json.dumps(setting.model_dump(mode="json")["space"])),
            "cells": cells}


def chosen_budget(paths: Paths, name: str, cell: str):
    """The budget the search chose for `cell` (reports/search/<dataset>.json)."""
    from seqbench.config import Budget

    path = paths.search_result(name)
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        config = dict(result["cells"][cell]["config"])
    except FileNotFoundError:
        raise SeqbenchError(f"{path}: not found; run `dvc repro search@{name}` first") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise SeqbenchError(f"{path}: no configuration for {cell} ({type(exc).__name__}: {exc}); "
                            f"rerun `dvc repro search@{name}`") from None
    return Budget(**config)


def chosen_cross_validation(paths: Paths, name: str, cell: str) -> dict:
    """The cross-validation behind a cell's chosen configuration (validation: kfold): its value,
    untrained loss, fold results and epoch count."""
    result = json.loads(paths.search_result(name).read_text(encoding="utf-8"))
    try:
        return result["cells"][cell]["cross_validation"]
    except KeyError:
        raise SeqbenchError(f"{paths.search_result(name)}: no cross-validation for {cell}; "
                            f"rerun `dvc repro search@{name}`") from None
