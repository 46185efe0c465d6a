"""The whole pipeline as one Prefect flow: what `make run` and the scheduled deployment run.

    python flows/pipeline.py [--datasets sp500_volatility text] [--pull] [--push] [--params params.yaml]

Steps, each a task: `dvc pull` (optional, when a remote is configured), then every DVC stage
`dvc repro` would visit, in its order, as a task named by the stage (`ingest@prices`, ...;
unchanged stages end as "Skipped"; after a failed stage the rest are not run; the training
stages' comparison flows report to the same Prefect API), `dvc push` (optional), and
publishing: a markdown artifact with the verdicts, each stage's outcome and duration, and a link
to reports/index.html. Without PREFECT_API_URL one temporary Prefect server serves the whole
run, so the training stages don't each start their own; likewise one pool of workers serves every
search and train stage (seqbench/orchestration/pool.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from seqbench.config import load_params
from seqbench.errors import ConfigError
from seqbench.locks import workspace_lock
from seqbench.orchestration import dvc as steps
from seqbench.orchestration.pool import shared_pool
from seqbench.orchestration.prefect import quiet_user_errors

ARTIFACT_KEY = "seqbench-verdicts"
SKIPPED = "Skipped"  # the state name of a stage DVC found unchanged (its type stays COMPLETED)


def log_line(line: str) -> None:
    get_run_logger().info(line)


def api_only_logger():
    """The current run's logger, sending to the Prefect API only: for a stage's output, which
    reaches the console already (reproduce_stage echoes it as it is printed)."""
    import logging

    from prefect.logging.handlers import APILogHandler

    logger = logging.getLogger("seqbench.stage_output")
    if not logger.handlers:
        logger.addHandler(APILogHandler())
        logger.setLevel(logging.INFO)
        logger.propagate = False  # Prefect's console handler sits above: it would print them again
    return logging.LoggerAdapter(logger, get_run_logger().extra)


# A remote that does not answer is worth retrying; a failed stage is not (DVC's error is final).
@task(name="dvc-pull", retries=3, retry_delay_seconds=[5, 20, 60])
def dvc_pull(root: Path) -> bool:
    if not steps.remote_configured(root):
        get_run_logger().warning("no DVC remote is configured: nothing to pull")
        return False
    steps.run_dvc(["pull", "--allow-missing"], root, log_line)
    return True


# DVC decides what is up to date, never Prefect's cache; a failed stage is not retried (its
# error is the data's or the code's, and DVC's is final).
@task(name="dvc-stage", cache_policy=NO_CACHE)
def dvc_stage(root: Path, stage: str, force_because: str | None = None):
    """One DVC stage, its output in this task's log; DVC's unchanged stages end as Skipped.
    force_because: why it must run though DVC sees it unchanged (an ingest whose source changed)."""
    if force_because:
        get_run_logger().info(f"running '{stage}': {force_because}")
    if steps.reproduce_stage(root, stage, api_only_logger().info, force=bool(force_because)):
        return "ran"
    get_run_logger().info(f"skipped: '{stage}' is unchanged since its last run")
    return Completed(name=SKIPPED, message="unchanged since its last run: DVC skipped it")


def run_stages(root: Path, plan: list[str], forced: dict[str, str] | None = None):
    """Each stage as its own task, one after the other in DVC's order. After a failed stage the
    rest are not run, as `dvc repro` stops; returns the outcomes and the failed task's state.
    forced: stage -> why it runs even though DVC sees it unchanged (stale_sources)."""
    forced = forced or {}
    stages, failed = [], None
    for stage in plan:
        if failed is not None:
            stages.append({"stage": stage, "outcome": "not run", "seconds": None})
            continue
        started = time.monotonic()
        state = dvc_stage.with_options(name=stage, task_run_name=stage)(
            root, stage, forced.get(stage), return_state=True
        )
        if not state.is_completed():
            failed, outcome = state, "failed"
        else:
            outcome = "skipped" if state.name == SKIPPED else "ran"
        stages.append({"stage": stage, "outcome": outcome, "seconds": time.monotonic() - started})
    return stages, failed


@task(name="dvc-push", retries=3, retry_delay_seconds=[5, 20, 60])
def dvc_push(root: Path) -> bool:
    if not steps.remote_configured(root):
        get_run_logger().warning("no DVC remote is configured: nothing to push")
        return False
    steps.run_dvc(["push"], root, log_line)
    return True


@task(name="publish-report")
def publish_report(root: Path, chosen: list[str], stages: list[dict]) -> str:
    from prefect.artifacts import create_markdown_artifact

    table = steps.verdict_table(root, chosen, stages)
    create_markdown_artifact(
        markdown=table,
        key=ARTIFACT_KEY,
        description="LSTM vs GRU verdicts per dataset; each stage's outcome and duration",
    )
    get_run_logger().info(table)
    return table


@flow(name="seqbench-pipeline")
def pipeline(
    datasets: list[str] | None = None,
    pull: bool | None = None,
    push: bool | None = None,
    params_path: str = "params.yaml",
) -> list[dict]:
    """Run the DVC pipeline stage by stage (optionally pulling and pushing), then publish the
    verdicts and the stages' outcomes; a failed stage fails the run with its error.

    datasets: a subset of params.yaml's datasets (default: all); pull/push default to
    params.yaml's `schedule:` settings.
    """
    quiet_user_errors()
    params_file = params_in_project(params_path)
    params = load_params(params_file)
    root = params_file.parent
    declared = list(params.datasets)
    chosen = chosen_datasets(params, datasets)
    # One pipeline per workspace, for the whole run; the stages' commands inherit the lock.
    with workspace_lock(root):
        if params.schedule.pull if pull is None else pull:
            dvc_pull(root)
        with shared_pool(params.train, root):
            stages, failed = run_stages(
                root, steps.plan_stages(root, chosen, declared), stale_sources(params_file, chosen)
            )
        logger = get_run_logger()
        (logger.info if failed is None else logger.warning)(steps.stage_summary(stages))
        if failed is None and (params.schedule.push if push is None else push):
            dvc_push(root)
        publish_report(root, chosen, stages)
    if failed is not None:
        failed.result()  # raises the stage's error: the run fails with it
    return stages


def stale_sources(params_file: Path, chosen: list[str]) -> dict[str, str]:
    """ingest@<name> -> why it must run though DVC sees it unchanged: DVC cannot see sources
    outside the project, so the ingest stages do not declare them (stages/ingest.py)."""
    from seqbench.stages.ingest import reingest_reason

    reasons = {f"ingest@{name}": reingest_reason(name, params_file) for name in chosen}
    return {stage: reason for stage, reason in reasons.items() if reason}


def chosen_datasets(params, datasets: list[str] | None) -> list[str]:
    """`datasets` (default: every declared one), each declared in params.yaml; otherwise a
    ConfigError naming the unknown ones and listing the declared."""
    declared = list(params.datasets)
    chosen = list(datasets or declared)
    unknown = [name for name in chosen if name not in declared]
    if unknown:
        raise ConfigError(f"unknown dataset(s) {', '.join(unknown)}; params.yaml declares: {', '.join(declared)}")
    return chosen


# The project this flow belongs to: a deployment runs it alone, whatever params_path a run asks
# for (anyone who reaches the Prefect API could otherwise run a planted dvc.yaml elsewhere).
PROJECT = Path(__file__).resolve().parents[1]


def params_in_project(params_path: str) -> Path:
    """`params_path` resolved, when it lies inside this project (params.yaml, a suite's
    suites/NAME/params.yaml); otherwise a ConfigError naming both."""
    params_file = Path(params_path).resolve()
    if not params_file.is_relative_to(PROJECT):
        raise ConfigError(
            f"params_path {params_file} is outside this project ({PROJECT}): the pipeline runs only the "
            "project it belongs to; start the flow from that project instead"
        )
    return params_file


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", help="only these datasets (default: all in params.yaml)")
    parser.add_argument("--pull", action=argparse.BooleanOptionalAction, default=None, help="dvc pull first")
    parser.add_argument("--push", action=argparse.BooleanOptionalAction, default=None, help="dvc push afterwards")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    from seqbench.errors import exit_code
    from seqbench.orchestration.prefect import prefect_api

    def run():
        # Checked before a server starts or any shell sees a dataset name (DVC puts the names
        # into the stages' command lines), and before waiting on anything.
        params_file = params_in_project(args.params)
        chosen_datasets(load_params(params_file), args.datasets)
        with workspace_lock(params_file.parent), prefect_api():
            pipeline(args.datasets, args.pull, args.push, args.params)

    return exit_code(run)


if __name__ == "__main__":
    sys.exit(main())
