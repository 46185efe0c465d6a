"""The train stage's flow: every (cell, seed) training run of one dataset as a Prefect task.

    python flows/train.py DATASET [--params params.yaml]

The DVC stage train@DATASET calls this after prepare@DATASET. Runs go through the task runner
set by `train.runner` in params.yaml (process, dask or sequential). Local runs (process,
sequential, dask's LocalCluster) read the project's files and write their run folder in place,
checkpoints included, and return their metrics. With `dask_address` the workers share no disk
with the project: a run's inputs travel with its task as bytes and its files come back as bytes,
which this process writes (seqbench/orchestration/remote.py). A run that fails for good fails the flow with
its error, after the other runs' results are saved.
"""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from seqbench.config import load_params, resolve_seeds
from seqbench.locks import workspace_lock
from seqbench.orchestration.prefect import quiet_user_errors, run_dataset_flow, ships_data
from seqbench.orchestration.remote import ShippedRun, ship_run, train_remote
from seqbench.stages.train import collect_runs, remove_stale_runs
from seqbench.training.runs import train_run

train_task = task(train_run, name="train", task_run_name="{name}-{cell}-seed{seed}", retry_delay_seconds=2)
# Its inputs are megabytes of arrays: nothing to hash for a cache that a run folder already is.
remote_task = task(
    train_remote, name="train", task_run_name="{name}-{cell}-seed{seed}", retry_delay_seconds=2, cache_policy=NO_CACHE
)


@flow(name="train")
def train(dataset: str, params_path: str = "params.yaml") -> dict:
    """Train LSTM and GRU with every seed on one prepared dataset, each cell with the
    configuration its search chose; write the summary."""
    from seqbench.paths import Paths
    from seqbench.training.prepared import load_prepared

    quiet_user_errors()
    params = load_params(params_path)
    training = params.train
    root = Path(params_path).resolve().parent
    with workspace_lock(root):
        meta = load_prepared(Paths(root).prepared(dataset)).meta
        seeds = resolve_seeds(training.seeds, meta["sizes"]["train"])
        remove_stale_runs(dataset, training.cells, seeds, Path(params_path))
        submit = submit_shipped if ships_data(training) else submit_local
        futures = {
            (cell, seed): submit(dataset, cell, seed, params_path, training)
            for cell in training.cells
            for seed in seeds
        }
        return collect_runs(dataset, futures, Path(params_path))


def submit_local(dataset: str, cell: str, seed: int, params_path: str, train):
    return train_task.with_options(retries=train.retries).submit(dataset, cell, seed, params_path, train.threads)


def submit_shipped(dataset: str, cell: str, seed: int, params_path: str, train) -> ShippedRun:
    try:
        inputs, finished = ship_run(dataset, cell, seed, params_path, train.threads)
    except Exception as exc:  # noqa: BLE001 - this run's failure, reported with it; the others go on
        run = ShippedRun(dataset, cell, seed, params_path)
        run.error = exc
        return run

    def submit():
        return remote_task.with_options(retries=train.retries).submit(dataset, cell, seed, inputs)

    run = ShippedRun(dataset, cell, seed, params_path, submit, train.retries)
    run.finished = finished
    if finished is None:
        run.future = submit()
    return run


def main(argv=None) -> int:
    return run_dataset_flow(train, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
