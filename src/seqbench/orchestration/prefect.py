"""Prefect plumbing shared by the flows: an API to talk to, and the task runner from params."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def prefect_api(startup_timeout: int = 120):
    """Use PREFECT_API_URL when set; otherwise one temporary local server for this process tree.

    Prefect's own ephemeral mode would start a server in every process, so each worker of the
    process runner would pay ~15 s and fight over the SQLite file. Starting one and exporting its
    URL lets the workers share it.
    """
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    # The server would try to phone home; the machines this runs on reach no such host.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = SubprocessASGIServer()
    server.start(timeout=startup_timeout)
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        # Send the last logs while the server is still there to take them; otherwise the
        # log worker retries against a closed port for over a minute at exit.
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)
        EventsWorker.drain_all(timeout=5)
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


def dataset_args(doc: str, argv=None):
    """The command line of a per-dataset flow script: DATASET [--params params.yaml]."""
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("--params", default="params.yaml")
    return parser.parse_args(argv)


def run_dataset_flow(flow, doc: str, argv=None, parallel=lambda params, dataset: True) -> int:
    """The main() of a per-dataset flow script (`DATASET [--params params.yaml]`): an unknown
    dataset or an unreachable cluster fails before a server starts; the flow runs under the
    workspace lock, on params.yaml's task runner. Where `parallel(params, dataset)` says there is
    nothing to run in parallel, the flow's function runs alone, with no server. Exit code 1 and
    one line for a user's error."""
    from seqbench.config import load_params
    from seqbench.errors import exit_code
    from seqbench.locks import workspace_lock

    args = dataset_args(doc, argv)

    def run():
        params = load_params(args.params)
        params.dataset(args.dataset)
        root = Path(args.params).resolve().parent
        with workspace_lock(root):
            if not parallel(params, args.dataset):
                return flow.fn(args.dataset, args.params)
            check_scheduler(params.train, root)
            with prefect_api():
                return flow.with_options(task_runner=task_runner(params.train, root))(args.dataset, args.params)

    return exit_code(run)


class _NoTracebackForUserErrors:
    """A logging filter: a SeqbenchError (bad input, a failed stage) is logged as its message;
    tracebacks stay for everything else, which would be a bug."""

    def filter(self, record) -> bool:
        from seqbench.errors import SeqbenchError

        if record.exc_info and isinstance(record.exc_info[1], SeqbenchError):
            record.exc_info, record.exc_text = None, None
        return True


def quiet_user_errors() -> None:
    """Install the filter on the handlers of Prefect's loggers (console and API), once."""
    import logging

    loggers = [
        logging.getLogger(name) for name in list(logging.Logger.manager.loggerDict) if name.startswith("prefect")
    ]
    for logger in [logging.getLogger("prefect"), *loggers]:
        for handler in logger.handlers:
            if not any(isinstance(f, _NoTracebackForUserErrors) for f in handler.filters):
                handler.addFilter(_NoTracebackForUserErrors())


def ships_data(train) -> bool:
    """Do runs go to a cluster that may share no disk with the project? Then their inputs and
    results travel with their tasks (seqbench/orchestration/remote.py); a LocalCluster shares this disk."""
    return train.runner == "dask" and bool(train.dask_address)


# The address of the pipeline's shared pool of workers, for the stages' task runners
# (seqbench/orchestration/pool.py starts it).
POOL_ADDRESS = "SEQBENCH_POOL_ADDRESS"


def pooled_runners(train) -> bool:
    """Do `train`'s settings run on local parallel workers, which one pool can serve? The
    sequential runner has none; a `dask_address` cluster has its own."""
    return train.runner in ("process", "dask") and not train.dask_address


def pool_address(train) -> str | None:
    """The shared pool a stage should use: this run's, when there is one and the stage's
    settings run on local workers."""
    address = os.environ.get(POOL_ADDRESS)
    return address if address and pooled_runners(train) else None


def task_runner(train, root=None):
    """The Prefect task runner named by params.yaml's `train.runner`; `root`: the project folder
    (relative certificate paths are relative to it)."""
    from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

    if address := pool_address(train):  # the pipeline's workers, started once for the whole run
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=address)
    if train.runner == "sequential":
        return ThreadPoolTaskRunner(max_workers=1)
    if train.runner == "process":
        return ProcessPoolTaskRunner(max_workers=train.workers)
    from prefect_dask import DaskTaskRunner

    if train.dask_address:
        return DaskTaskRunner(address=train.dask_address, client_kwargs=client_kwargs(train, root))
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        # Processes, one thread each: torch releases the GIL, but two runs in one process
        # would share (and fight over) one torch thread pool.
        cluster_kwargs={
            "n_workers": train.workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        },
    )


def client_kwargs(train, root=None) -> dict:
    """distributed.Client's arguments for `train.dask_address`: the connect timeout and, for a
    tls:// address, the certificates of `train.dask_tls` with encryption required."""
    kwargs = {"timeout": train.dask_timeout_s}
    if train.dask_tls is not None:
        from distributed.security import Security

        files = {key: tls_file(getattr(train.dask_tls, key), key, root) for key in ("ca_file", "cert", "key")}
        kwargs["security"] = Security(
            tls_ca_file=files["ca_file"],
            tls_client_cert=files["cert"],
            tls_client_key=files["key"],
            require_encryption=True,
        )
    return kwargs


def tls_file(value: str, key: str, root=None) -> str:
    from pathlib import Path

    from seqbench.errors import ConfigError

    path = Path(value).expanduser()
    if not path.is_absolute() and root is not None:
        path = Path(root) / path
    if not path.is_file():
        raise ConfigError(f"train.dask_tls.{key}: {path} is not a file")
    return str(path)


def warn_if_unencrypted(address: str) -> None:
    """A tcp:// scheduler beyond this machine: Dask's results come back as pickles, so a rogue
    worker or anyone in the path could run code in this process. Say so; tls:// is the fix."""
    import warnings
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1") or (parts.hostname or "").startswith("127.")
    if parts.scheme == "tcp" and not loopback:
        warnings.warn(
            f"train.dask_address {address} is unencrypted tcp:// to another machine: Dask returns results "
            "as pickles, so whoever runs a worker there or sits in between can run code here. Use a tls:// "
            "address with train.dask_tls (docs: Search and training, training on a cluster)",
            stacklevel=2,
        )


def check_scheduler(train, root=None) -> None:
    """With `dask_address`, connect once before anything starts: an unreachable (or refusing)
    scheduler is one clear error naming the address and the timeout, not a traceback from
    inside the flow."""
    if not ships_data(train):
        return
    import distributed

    from seqbench.errors import SeqbenchError

    warn_if_unencrypted(train.dask_address)
    kwargs = client_kwargs(train, root)
    try:
        with distributed.Client(train.dask_address, set_as_default=False, **kwargs):
            pass
    except (OSError, TimeoutError) as exc:
        raise SeqbenchError(
            f"cannot reach the Dask scheduler at {train.dask_address} (train.dask_address) within "
            f"{train.dask_timeout_s:g} s (train.dask_timeout_s): {exc}. Start the cluster, or check "
            "the address, the firewall and, for tls://, train.dask_tls"
        ) from None


# ---- the scheduled pipeline (flows/serve.py, flows/deploy.py) ---------------------------------

DEPLOYMENT = "nightly"


def require_server() -> str:
    """The Prefect API URL of a real server: schedules don't run without one."""
    from seqbench.errors import SeqbenchError

    url = os.environ.get("PREFECT_API_URL")
    if not url:
        raise SeqbenchError(
            "schedules need a Prefect server: start one with `make server`, then set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api (the make targets set it for you)"
        )
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=10):
            pass
    except OSError as exc:
        raise SeqbenchError(
            f"cannot reach the Prefect server at {url} ({getattr(exc, 'reason', exc)}); start it with `make server`"
        ) from None
    return url


def pipeline_schedule(schedule, cron: str | None = None, timezone: str | None = None, interval: float | None = None):
    """A Prefect schedule from params.yaml's `schedule:`, or the command line's override."""
    from prefect.schedules import Cron, Interval

    from seqbench.errors import ConfigError

    if interval is not None:
        if interval <= 0:
            raise ConfigError("--interval: must be > 0 seconds")
        return Interval(interval, timezone=timezone or schedule.timezone)
    try:
        return Cron(cron or schedule.cron, timezone=timezone or schedule.timezone)
    except ValueError as exc:
        where = "--cron/--timezone" if cron or timezone else "params.yaml: schedule"
        raise ConfigError(f"{where}: {exc}") from None


def one_run_at_a_time():
    """The deployment's concurrency limit: a second run waits (AwaitingConcurrencySlot) until the
    first has finished, so two runs never work in the same DVC workspace at once."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    return ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)
