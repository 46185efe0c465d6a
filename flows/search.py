"""The search flow: equal-budget hyperparameter search per cell, every trial a Prefect task.

    python flows/search.py DATASET [--params params.yaml]

The DVC stage search@DATASET calls this after prepare@DATASET; train@DATASET reads its result,
reports/search/DATASET.json. Trials go through the task runner set by `train.runner` (process,
dask or sequential), in rounds of `train.search.parallel` trials per cell (see seqbench/search.py
for why rounds). With `train.search.trials: 0` it writes the fixed budget for both cells.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prefect import flow, task

from seqbench.config import load_params
from seqbench.errors import SeqbenchError
from seqbench.orchestration import prefect_api, quiet_user_errors, task_runner
from seqbench.search import ask, finished, fingerprint, history_of, open_study, search_trial, tell, write_result

trial_task = task(search_trial, name="trial", task_run_name="{name}-{cell}-trial{number}", retry_delay_seconds=2)


@flow(name="search-lstm-gru")
def search(dataset: str, params_path: str = "params.yaml") -> dict:
    """Search each cell's configuration on one prepared dataset; write the chosen ones."""
    from seqbench.paths import Paths

    quiet_user_errors()
    params = load_params(params_path)
    setting = params.search(dataset)
    paths = Paths(Path(params_path).resolve().parent)
    studies = {}
    if setting.trials:
        wanted = fingerprint(params, dataset, paths)
        studies = {cell: open_study(paths.study(dataset) / f"{cell}.journal", cell, wanted)
                   for cell in params.train.cells}
        run_rounds(dataset, studies, setting, params_path, params.train)
    return write_result(dataset, params_path, studies)


def run_rounds(dataset: str, studies: dict, setting, params_path: str, train) -> None:
    """Ask a round of trials per cell, run them all at once, record them; until every cell has
    `setting.trials` finished (complete or pruned) trials."""
    while True:
        round_ = []
        for cell, study in studies.items():
            done = len(finished(study))
            history = history_of(study)  # fixed for the whole round
            for i in range(min(setting.parallel, setting.trials - done)):
                trial = ask(study, setting, cell, done + i)
                future = trial_task.with_options(retries=train.retries).submit(
                    dataset, cell, trial.number, trial.params, history, params_path, train.threads)
                round_.append((cell, study, trial, future))
        if not round_:
            return
        print(f"search {dataset}: {len(round_)} trials running", file=sys.stderr, flush=True)
        collect_round(dataset, round_)


def collect_round(dataset: str, round_: list) -> None:
    """Record every trial of a round; then fail with the errors of those that failed for good."""
    from optuna.trial import TrialState

    failures = {}
    for cell, study, trial, future in round_:
        try:
            tell(study, trial, future.result())
        except Exception as exc:  # noqa: BLE001 - reported below, with the trial it belongs to
            study.tell(trial, state=TrialState.FAIL)
            failures[f"{cell} trial {trial.number}"] = f"{type(exc).__name__}: {exc}"
    if failures:
        lines = "; ".join(f"{run}: {error}" for run, error in failures.items())
        raise SeqbenchError(f"{len(failures)} search trials of '{dataset}' failed: {lines}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    from seqbench.errors import exit_code

    def run():
        params = load_params(args.params)
        params.dataset(args.dataset)  # an unknown name fails here, before a server starts
        if not params.search(args.dataset).trials:
            return search.fn(args.dataset, args.params)  # nothing to run in parallel
        with prefect_api():
            return search.with_options(task_runner=task_runner(params.train))(args.dataset, args.params)

    return exit_code(run)


if __name__ == "__main__":
    sys.exit(main())
