"""The comparison flow: every (cell, seed) training run of one dataset as a Prefect task.

    python flows/compare.py DATASET [--params params.yaml]

The DVC stage train@DATASET calls this after prepare@DATASET. Runs go through the task runner
set by `train.runner` in params.yaml (process, dask or sequential); each returns its metrics
(file paths and small dicts cross process boundaries, never tables). A run that fails for good
fails the flow with its error, after the other runs' results are saved.
"""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow, task

from seqbench.compare import collect_runs, remove_stale_runs
from seqbench.config import load_params, resolve_seeds
from seqbench.locks import workspace_lock
from seqbench.orchestration import dataset_args, prefect_api, quiet_user_errors, task_runner
from seqbench.train import train_run

train_task = task(train_run, name="train", task_run_name="{name}-{cell}-seed{seed}", retry_delay_seconds=2)


@flow(name="compare-lstm-gru")
def compare(dataset: str, params_path: str = "params.yaml") -> dict:
    """Train LSTM and GRU with every seed on one prepared dataset, each cell with the
    configuration its search chose; write the summary."""
    from seqbench.paths import Paths
    from seqbench.prepare import load_prepared

    quiet_user_errors()
    params = load_params(params_path)
    train = params.train
    root = Path(params_path).resolve().parent
    with workspace_lock(root):
        _, meta = load_prepared(Paths(root).prepared(dataset))
        seeds = resolve_seeds(train.seeds, meta["sizes"]["train"])
        remove_stale_runs(dataset, train.cells, seeds, Path(params_path))
        futures = {
            (cell, seed): train_task.with_options(retries=train.retries).submit(dataset, cell, seed, params_path,
                                                                                train.threads)
            for cell in train.cells
            for seed in seeds
        }
        return collect_runs(dataset, futures, Path(params_path))


def main(argv=None) -> int:
    args = dataset_args(__doc__, argv)
    from seqbench.errors import exit_code

    def run():
        params = load_params(args.params)
        params.dataset(args.dataset)  # an unknown name fails here, before a server starts
        with workspace_lock(Path(args.params).resolve().parent), prefect_api():
            compare.with_options(task_runner=task_runner(params.train))(args.dataset, args.params)

    return exit_code(run)


if __name__ == "__main__":
    sys.exit(main())
