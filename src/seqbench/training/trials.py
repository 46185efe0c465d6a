"""One search trial: a configuration trained on the training split and scored on the validation
split (holdout), or cross-validated over both (kfold). The test split is never read.

The study around the trials (which configurations to ask, the result file) is the search stage's:
stages/search.py. A trial is a pure function of its inputs, so it runs on any worker.
"""

from __future__ import annotations

import math
import sys
import time

from seqbench.errors import SeqbenchError
from seqbench.training.specs import TrialSpec

INT_KEYS = {"batch_size", "param_budget", "hidden_size", "embedding_size", "layers"}


LSTM_ONLY = {"forget_bias"}  # the GRU has no forget gate


def cell_space(space: dict, cell: str) -> dict:
    """The dimensions a cell's trials sample (fixed values and LSTM-only keys left out): the
    shared ones first, in the space's order, then the cell's own. The order is the order of the
    draws (see `ask`): a cell-only draw before a shared one would shift the shared one's."""
    from seqbench.settings import Range

    sampled = {key: value for key, value in space.items() if isinstance(value, (Range, list))}
    shared = {key: value for key, value in sampled.items() if key not in LSTM_ONLY}
    own = {key: value for key, value in sampled.items() if key in LSTM_ONLY and cell == "lstm"}
    return {**shared, **own}


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


def run_trial(spec: TrialSpec) -> dict:
    """A trial from its spec alone (the search stage's, or shipped to a Dask worker), in its
    numerics mode: in this process when it can, else in a fresh one (numerics.py)."""
    from seqbench.numerics import in_mode

    return in_mode(spec.numerics, _run_trial, spec)


def _run_trial(spec: TrialSpec) -> dict:
    import torch

    torch.set_num_threads(spec.threads)
    setting = spec.setting
    started = time.perf_counter()
    if spec.budget.validation == "kfold":
        # The pruner's steps are folds: it may stop a trial after any fold.
        result = cross_validate(spec, pruning_trial(setting, spec.history, 0))
    else:
        result = holdout_trial(spec, pruning_trial(setting, spec.history, setting.prune_after))
    if result["state"] == "pruned":
        steps = len(result["val_losses"])
        where = f"fold {steps} of {spec.budget.folds}" if result["steps"] == "folds" else f"{steps} epochs"
        print(f"{spec.label}: pruned after {where}", file=sys.stderr, flush=True)
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def holdout_trial(spec: TrialSpec, trial) -> dict:
    """Train on the training split, score on the validation split; the pruner sees every
    epoch's validation loss."""
    import optuna

    from seqbench.training.fit import fit_trial

    callbacks = [pruning_callback(trial)]
    result = fit_trial(spec, spec.prepared.arrays, spec.label, callbacks, stops=(optuna.TrialPruned,))
    # The pruning callback reported every epoch's loss, the one it pruned at included.
    reported = trial.study.get_trials(deepcopy=False)[-1].intermediate_values
    result["val_losses"] = [reported[k] for k in sorted(reported)]
    result["epochs"] = len(result["val_losses"])
    result["steps"] = "epochs"
    result["state"] = "pruned" if result.pop("stopped") else "complete"
    if result["state"] == "complete":
        result["value"] = best_value(result)
    return result


def cross_validate(spec: TrialSpec, trial) -> dict:
    """Stratified k-fold cross-validation of one configuration over the training and validation
    items. Each fold trains with early stopping on its held-out part. The folds' validation
    losses are averaged epoch by epoch (the untrained model is epoch 0); the value is the lowest
    mean, and its epoch, in optimiser steps (`refit_steps`), is how long the final fit on all
    items trains. A configuration that is good only at each fold's own lucky epoch does not
    score well: the final fit cannot pick its epoch. After each fold the value so far goes to
    the pruner (step = fold)."""
    from seqbench.training.fit import fit_trial

    arrays, budget, label = spec.prepared.arrays, spec.budget, spec.label
    folds, curves, values = [], [], []
    for k, (train_items, val_items) in enumerate(fold_items(arrays, budget.folds, spec.setting.seed)):
        fold_arrays = {**arrays, "idx_train": train_items, "idx_val": val_items}
        fit = fit_trial(spec, fold_arrays, f"{label} fold {k + 1}/{budget.folds}")
        curves.append([fit["untrained_val_loss"], *fit["val_losses"]])
        folds.append(
            {"best_value": best_value(fit), "epochs": len(fit["val_losses"]), "steps_per_epoch": fit["steps_per_epoch"]}
        )
        mean = mean_curve(curves)
        if not all(math.isfinite(v) for v in mean):
            raise SeqbenchError(f"{label}: fold {k + 1} ended with a non-finite validation loss")
        values.append(min(mean))
        trial.report(values[-1], k)
        if trial.should_prune():
            break
    mean = mean_curve(curves)
    result = {
        "val_losses": values,
        "steps": "folds",
        "folds": folds,
        "mean_val_losses": mean,
        "parameters": fit["parameters"],
        "hidden_size": fit["hidden_size"],
        "param_budget": fit["param_budget"],
        "epochs": sum(f["epochs"] for f in folds),
        "untrained_val_loss": mean[0],
    }
    if len(folds) < budget.folds:
        result["state"] = "pruned"
    else:
        result["state"] = "complete"
        result["value"] = values[-1]
        # At least one epoch: a final fit of none would be the untrained model, which the
        # comparison then marks void (its cross-validated loss did not beat the untrained one).
        result["refit_epochs"] = max(1, mean.index(values[-1]))
        result["refit_steps"] = refit_steps(folds, result["refit_epochs"])
    return result


def refit_steps(folds: list[dict], epochs: int) -> int:
    """The optimiser steps the folds took to reach the chosen epoch (their mean, rounded): the
    length of the final fit. Its pooled items are a fold's k/(k-1): the same epoch count there
    would take that many more steps, more training than cross-validation saw work."""
    import statistics

    return max(1, round(epochs * statistics.fmean(f["steps_per_epoch"] for f in folds)))


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
        raise SeqbenchError(
            f"train.folds: {folds} folds need at least {folds} training and validation "
            f"items of every class; the smallest class has {smallest}"
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(pool[fit], pool[held_out]) for fit, held_out in splitter.split(pool, labels)]


def pruning_trial(setting, history: list[dict], warmup: int):
    """A trial in a throwaway in-memory study that holds `history`: the pruner sees exactly
    those trials, whichever worker this runs on. `warmup`: steps before it may prune."""
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=warmup)
        if setting.pruner == "median"
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(direction="minimize", pruner=pruner)
    for past in history:
        study.add_trial(
            create_trial(
                state=TrialState.COMPLETE, value=past["value"], intermediate_values=dict(enumerate(past["val_losses"]))
            )
        )
    return study.ask()


def pruning_callback(trial):
    """optuna-integration's Lightning pruning callback: it reports each epoch's validation loss
    to the trial and stops the trial when the pruner says so."""
    from optuna_integration import PyTorchLightningPruningCallback

    return PyTorchLightningPruningCallback(trial, monitor="val_loss")


def best_value(result: dict) -> float:
    losses = [result["untrained_val_loss"], *result["val_losses"]]
    value = min(losses)
    if not math.isfinite(value):
        raise SeqbenchError(f"a search trial ended with validation loss {value}")
    return value


def finished(study) -> list:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def history_of(study) -> list[dict]:
    """The complete trials, as the pruner of a trial in the next round sees them."""
    from optuna.trial import TrialState

    return [
        {"value": t.value, "val_losses": [t.intermediate_values[k] for k in sorted(t.intermediate_values)]}
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    ]


def ask(study, setting, cell: str, index: int):
    """The `index`-th trial of a cell (counting finished ones), sampled by TPE seeded with
    (seed, index): the same trials for any number of workers, and after a resume too (on
    another CPU, TPE's trials follow the earlier trials' losses, which differ within seed noise
    unless train.numerics is portable).

    Paired trials, and exactly how far: trial k of both cells gets the same value of every
    shared dimension when it is drawn at random, i.e. when fewer than `startup_trials` of the
    cell's trials had finished (complete or pruned) as it was asked. Optuna's TPESampler then
    hands each dimension, in the order of `distributions` (shared first, cell-only last), to its
    RandomSampler, whose one stream is seeded by (seed, k) alone and consumes a fixed number of
    numbers per dimension; so both cells' shared draws are the same numbers. In the search
    flow's rounds of `parallel` (both cells alike), these are trials 0 to
    ceil(startup_trials / parallel) * parallel - 1. Later trials are TPE's: each dimension is
    drawn from densities fitted to that cell's own trials and losses, so they differ between
    the cells by design (pairing them would give up modelling each cell's own results)."""
    import optuna

    study.sampler = optuna.samplers.TPESampler(
        seed=setting.seed * 100_003 + index, n_startup_trials=setting.startup_trials, constant_liar=True
    )
    return study.ask(distributions(setting.space, cell))


def tell(study, trial, result: dict) -> None:
    """Record a trial's outcome: its losses per epoch, then its value (the best validation loss,
    the untrained model counted as epoch 0, as training does) or that it was pruned."""
    from optuna.trial import TrialState

    for step, loss in enumerate(result.get("val_losses", [])):
        trial.report(loss, step)
    for key in (
        "hidden_size",
        "parameters",
        "param_budget",
        "epochs",
        "seconds",
        "untrained_val_loss",
        "refit_epochs",
        "refit_steps",
        "folds",
        "mean_val_losses",
    ):
        if key in result:
            trial.set_user_attr(key, result[key])
    if result["state"] == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, result["value"])
