"""The search flow: equal-budget hyperparameter search per cell, every trial a Prefect task.

    python flows/search.py DATASET [--params params.yaml]

The DVC stage search@DATASET calls this after prepare@DATASET; train@DATASET reads its result,
reports/search/DATASET.json. Trials go through the task runner set by `train.runner` (process,
dask or sequential), in rounds of `train.search.parallel` trials per cell (see seqbench/stages/search.py
for why rounds). With `train.search.trials: 0` it writes the fixed budget for both cells. With
`dask_address` a trial's inputs (the prepared arrays as bytes, the settings) travel with its task;
a trial writes nothing, and its result is a small dict.
"""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from seqbench.config import load_params
from seqbench.errors import SeqbenchError
from seqbench.locks import workspace_lock
from seqbench.orchestration.prefect import quiet_user_errors, run_dataset_flow, ships_data
from seqbench.orchestration.remote import ship_search, trial_remote
from seqbench.stages.search import fingerprint, open_study, search_trial, write_result
from seqbench.training.trials import ask, finished, history_of, tell

trial_task = task(search_trial, name="trial", task_run_name="{name}-{cell}-trial{number}", retry_delay_seconds=2)
# Its inputs hold the arrays: nothing to hash for a cache the study's journal already is.
remote_trial_task = task(
    trial_remote,
    name="trial",
    task_run_name="{name}-{cell}-trial{number}",
    retry_delay_seconds=2,
    cache_policy=NO_CACHE,
)


@flow(name="search")
def search(dataset: str, params_path: str = "params.yaml") -> dict:
    """Search each cell's configuration on one prepared dataset; write the chosen ones."""
    from seqbench.paths import Paths

    quiet_user_errors()
    params = load_params(params_path)
    setting = params.search(dataset)
    paths = Paths(Path(params_path).resolve().parent)
    studies = {}
    with workspace_lock(paths.root):
        folder = paths.study(dataset)
        folder.mkdir(parents=True, exist_ok=True)  # DVC's output, even without trials
        if setting.trials:
            wanted = fingerprint(params, dataset, paths)
            studies = {cell: open_study(folder / f"{cell}.journal", cell, wanted) for cell in params.train.cells}
            run_rounds(dataset, studies, setting, params_path, params.train)
        return write_result(dataset, params_path, studies)


def run_rounds(dataset: str, studies: dict, setting, params_path: str, train) -> None:
    """Per cell: ask a round of trials, run them, record them; until the cell has `trials`
    finished (complete or pruned) trials. The cells' rounds are independent, so one cell's
    next round starts while the other's trials still run and the workers stay busy."""
    from prefect.futures import as_completed

    shipped = ship_search(dataset, params_path) if ships_data(train) else None

    def submit(cell: str, trial, history: list):
        if shipped is not None:
            return remote_trial_task.with_options(retries=train.retries).submit(
                dataset, cell, trial.number, trial.params, history, shipped, train.threads
            )
        return trial_task.with_options(retries=train.retries).submit(
            dataset, cell, trial.number, trial.params, history, params_path, train.threads
        )

    def next_round(cell: str) -> list:
        study = studies[cell]
        done = len(finished(study))
        history = history_of(study)  # fixed for the whole round
        round_ = []
        for i in range(min(setting.parallel, setting.trials - done)):
            trial = ask(study, setting, cell, done + i)
            future = submit(cell, trial, history)
            round_.append((trial, future))
        if round_:
            print(
                f"search {dataset} {cell}: trials {done + 1}-{done + len(round_)} of {setting.trials} running",
                file=sys.stderr,
                flush=True,
            )
        return round_

    running = {cell: next_round(cell) for cell in studies}
    completed = set()
    while any(running.values()):
        futures = [future for round_ in running.values() for _, future in round_]
        for future in as_completed(futures):
            completed.add(future.task_run_id)
            cell = next(c for c, round_ in running.items() if any(f is future for _, f in round_))
            if all(f.task_run_id in completed for _, f in running[cell]):
                collect_round(dataset, cell, studies[cell], running[cell])
                running[cell] = next_round(cell)
                break  # wait again, on the new round's trials too


def collect_round(dataset: str, cell: str, study, round_: list) -> None:
    """Record every trial of a cell's round in trial order; then fail with the errors of those
    that failed for good."""
    from optuna.trial import TrialState

    failures = {}
    for trial, future in round_:
        try:
            tell(study, trial, future.result())
        except Exception as exc:  # noqa: BLE001 - reported below, with the trial it belongs to
            study.tell(trial, state=TrialState.FAIL)
            failures[f"{cell} trial {trial.number}"] = f"{type(exc).__name__}: {exc}"
    if failures:
        lines = "; ".join(f"{run}: {error}" for run, error in failures.items())
        raise SeqbenchError(f"{len(failures)} search trials of '{dataset}' failed: {lines}")


def main(argv=None) -> int:
    # Without trials there is nothing to run in parallel: the search writes the fixed budget.
    return run_dataset_flow(search, __doc__, argv, parallel=lambda params, dataset: bool(params.search(dataset).trials))


if __name__ == "__main__":
    sys.exit(main())
