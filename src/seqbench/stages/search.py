"""Equal-budget hyperparameter search per cell (Optuna), and the configuration it chooses.

Each cell gets its own study with the same number of trials over the same space, a seeded TPE
sampler and a median pruner (optuna-integration's Lightning pruning callback). A trial trains on
the training split and is scored by its best validation loss; the test split is never read.

Trials are asked in fixed-size rounds (`search.parallel` per cell). A trial's sampler is seeded by
(seed, trial number) and its pruner compares it only with trials finished before its round, so
which trials are sampled and pruned does not depend on how many workers run them, or on timing.
The cells' trials are paired while TPE still samples at random: trial k of both cells then gets
the same value of every shared dimension (training/trials.py, `ask`, says exactly when).

Files:
  models/<dataset>/search/<cell>.journal  the study (Optuna's journal storage): a killed search
                                          resumes; a changed space, budget or data starts over
  reports/search/<dataset>.json           the chosen configuration per cell and every trial
                                          (small, in git; training reads it); per cell also
                                          "top_trials": {"numbers", "values", "spread"}, the
                                          best 3 complete trials' validation losses, best
                                          first, and max - min (null without one)
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from seqbench.paths import Paths
from seqbench.training.trials import finished, run_trial, trial_budget

# ---- the space -----------------------------------------------------------------------------


# ---- one trial (a Prefect task; runs in a worker) ------------------------------------------


def search_trial(
    name: str,
    cell: str,
    number: int,
    sampled: dict,
    history: list[dict],
    params_path: str = "params.yaml",
    threads: int = 1,
) -> dict:
    """Train trial `number` of a cell with the `sampled` values. `history`: the trials finished
    before this one's round (their per-epoch losses), which the median pruner compares with."""
    from seqbench.config import load_params
    from seqbench.training.prepared import load_prepared
    from seqbench.training.specs import TrialSpec

    params_path = Path(params_path)
    params = load_params(params_path)
    setting = params.search(name)
    prepared = load_prepared(Paths(params_path.resolve().parent).prepared(name))
    budget = trial_budget(params.budget(name), setting.space, sampled)
    numerics = params.train.numerics
    return run_trial(TrialSpec(name, cell, number, budget, setting, history, prepared, threads, numerics))


# ---- the studies (in the flow's process) ---------------------------------------------------


def fingerprint(params, name: str, paths: Paths) -> dict:
    """What a study's trials depend on; when any of it changes, the search starts over. The
    trial count is left out: raising it continues the study."""
    from seqbench.training.digest import code_sha256
    from seqbench.training.prepared import load_prepared

    setting = params.search(name).model_dump(mode="json", exclude={"trials"})
    # The code digest is the training runs' one: a trial is a short training run, and its
    # closure holds training/trials.py too (how trials are asked, scored and told).
    return {
        "search": setting,
        "budget": params.budget(name).model_dump(mode="json"),
        "data_sha256": load_prepared(paths.prepared(name)).sha256,
        "code_sha256": code_sha256(params.dataset(name).kind),
        "numerics": params.train.numerics,  # native | portable: which kernels the trials ran
    }


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


# ---- the result file -----------------------------------------------------------------------

# A cross-validated trial's record beside its value; the chosen one's goes to training.
CV_KEYS = ("untrained_val_loss", "refit_epochs", "refit_steps", "folds", "mean_val_losses")


def cell_result(study, cell: str, base, setting, meta: dict) -> dict:
    """The chosen configuration of a cell (its best trial's, or the fixed budget without
    trials) and every trial, in trial order."""
    trials = [trial_record(t) for t in finished(study)] if study is not None else []
    complete = [t for t in trials if t["state"] == "complete"]
    best = min(complete, key=lambda t: t["value"]) if complete else None
    budget = trial_budget(base, setting.space, best["params"] if best else {})
    size = model_size(best, budget, meta, cell)
    # Written out: training rebuilds the cell from this alone.
    config = {**budget.model_dump(mode="json"), "hidden_size": size["hidden_size"]}
    if budget.size_match == "params":
        config["param_budget"] = size["param_budget"]
    found = {
        "config": config,
        "parameters": size["parameters"],
        "best_trial": best["number"] if best else None,
        "best_value": best["value"] if best else None,
        "top_trials": top_trials(complete),
        "wall_seconds": round(sum(t["seconds"] or 0 for t in trials), 3),
        "trials": trials,
    }
    if budget.validation == "kfold" and best:
        # Training fits all items for the optimiser steps the folds chose (refit_steps, in
        # cross_validation), with nothing left to stop on; max_epochs records the folds' epochs.
        config["max_epochs"] = best["refit_epochs"]
        found["cross_validation"] = {key: best[key] for key in (*CV_KEYS, "value") if key in best}
        # A cosine schedule decayed over this many epochs of a fold: the refit decays alike per step.
        found["cross_validation"]["fold_max_epochs"] = budget.max_epochs
    return found


def top_trials(complete: list[dict], count: int = 3) -> dict:
    """How decisive the search was: the numbers and values (validation losses; cross-validated
    with kfold) of the best `count` complete trials, best first, and their spread (worst - best).
    A spread small beside the seeds' noise means the trials near the top were about as good as
    the chosen one: another search seed could have chosen any of them."""
    top = sorted(complete, key=lambda t: (t["value"], t["number"]))[:count]
    values = [t["value"] for t in top]
    return {
        "numbers": [t["number"] for t in top],
        "values": values,
        "spread": values[-1] - values[0] if values else None,
    }


def model_size(best: dict | None, budget, meta: dict, cell: str) -> dict:
    """The chosen model's hidden size, parameter count and parameter budget: as its best trial
    measured them on the worker, or (the fixed budget, a study from before trials recorded
    them) from a model built here, which costs this process Lightning's import."""
    if best and "param_budget" in best:  # recorded with hidden_size and parameters
        return {key: best[key] for key in ("hidden_size", "parameters", "param_budget")}
    from seqbench.models import build_model, param_budget

    model = build_model(meta, cell, budget)
    return {
        "hidden_size": model.hparams.hidden_size,
        "parameters": model.sized_parameters(),
        "param_budget": param_budget(meta, budget) if budget.size_match == "params" else None,
    }


def trial_record(trial) -> dict:
    attrs = trial.user_attrs
    losses = [trial.intermediate_values[k] for k in sorted(trial.intermediate_values)]
    value = trial.value if trial.value is not None else (losses[-1] if losses else None)
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "value": value,
        "params": dict(trial.params),
        "hidden_size": attrs.get("hidden_size"),
        "parameters": attrs.get("parameters"),
        **({"param_budget": attrs["param_budget"]} if "param_budget" in attrs else {}),
        "epochs": attrs.get("epochs"),
        "seconds": attrs.get("seconds"),
        "val_losses": losses,
        **{key: attrs[key] for key in CV_KEYS if key in attrs},
    }


def write_result(name: str, params_path: Path | str, studies: dict) -> dict:
    """Write reports/search/<dataset>.json from the cells' studies (none: the fixed budget)."""
    from seqbench.config import load_params
    from seqbench.timings import write_stage
    from seqbench.training.prepared import load_prepared

    params = load_params(params_path)
    setting = params.search(name)
    paths = Paths(Path(params_path).resolve().parent)
    meta = load_prepared(paths.prepared(name)).meta
    base = params.budget(name)
    cells = {cell: cell_result(studies.get(cell), cell, base, setting, meta) for cell in params.train.cells}
    summary = search_summary(name, setting, cells)
    write_stage(paths, name, "search", summary, paths.search_result(name))  # its times apart (timings.py)
    return summary


def search_summary(name: str, setting, cells: dict) -> dict:
    config = next(iter(cells.values()))["config"]
    kfold = config["validation"] == "kfold"
    pruner = None
    if setting.pruner == "median" and setting.trials:
        pruner = (
            {"name": "MedianPruner", "after_each": "fold"}
            if kfold
            else {"name": "MedianPruner", "warmup_epochs": setting.prune_after}
        )
    return {
        "dataset": name,
        "trials": setting.trials,
        "size_match": config["size_match"],
        "validation": {"method": "kfold", "folds": config["folds"]} if kfold else {"method": "holdout"},
        "sampler": {
            "name": "TPESampler",
            "seed": setting.seed,
            "startup_trials": setting.startup_trials,
            "parallel": setting.parallel,
        },
        "pruner": pruner,
        "space": json.loads(json.dumps(setting.model_dump(mode="json")["space"])),
        "cells": cells,
    }
