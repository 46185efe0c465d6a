"""One pool of workers for a whole pipeline run: started once, shared by every search and train
stage.

Each training stage is its own command (DVC runs `python flows/search.py DATASET`), and each used
to start its own process pool: two worker processes that import torch, Lightning and Prefect
before their first run, about 19 s per stage, 8 stages in `make run`. The pipeline flow instead
starts a local Dask cluster (processes, one thread each, as the dask runner's own LocalCluster)
when the run begins, has its workers import what a run needs while the data stages run, and
exports its address (prefect.POOL_ADDRESS); a stage's task runner connects to it (task_runner() in
orchestration/prefect.py) instead of starting workers.

The runs compute the same numbers in a pooled worker as in a fresh one: every run fixes its seeds
and torch's threads itself (training/fit.py), a worker runs one task at a time, and the workers
enter the runs' numerics mode (train.numerics) before torch computes anything.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager

from seqbench.orchestration.prefect import POOL_ADDRESS, pooled_runners


@contextmanager
def shared_pool(train, root):
    """Start `train.workers` local worker processes for the `with` block (none where the settings
    need none, or a pool is already running), and point the stages at them. `root` is the
    workspace (where params.yaml is): the workers start there, as a stage's own workers would
    (DVC runs each stage's command in it), so relative paths mean the same to them."""
    if not pooled_runners(train) or os.environ.get(POOL_ADDRESS):
        yield None
        return
    from contextlib import chdir

    from distributed import Client, LocalCluster

    # The cluster's start and stop are not the user's business: its INFO lines (workers
    # added and removed) would fill the run's log.
    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        with chdir(root):  # the worker processes (and their nannies, which restart them) start here
            cluster = LocalCluster(
                n_workers=train.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.WARNING,  # the workers' own loggers
            )
        with cluster, Client(cluster, set_as_default=False) as client:
            # In the background: the workers import while the data stages run. One task per
            # worker, kept referenced (a released future is cancelled).
            warming = [  # noqa: F841
                client.submit(warm_up, train.numerics, pure=False, workers=[worker], allow_other_workers=False)
                for worker in client.scheduler_info()["workers"]
            ]
            os.environ[POOL_ADDRESS] = cluster.scheduler_address
            try:
                yield cluster.scheduler_address
            finally:
                os.environ.pop(POOL_ADDRESS, None)
    finally:
        quiet.setLevel(level)  # after the cluster has closed


def warm_up(numerics: str = "native") -> None:
    """What a worker imports before its first run: torch, Lightning, the training code and
    Prefect's task engine; and the GRU's kernel of the run's numerics mode, entered first (before
    torch computes anything), loaded from its build cache."""
    from seqbench.numerics import enter

    enter(numerics)
    import prefect.task_engine  # noqa: F401

    import seqbench.stages.search  # noqa: F401
    import seqbench.training.runs  # noqa: F401
    from seqbench.models.fused_gru import kernel_available

    kernel_available()
