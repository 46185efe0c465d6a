"""The whole pipeline as one Prefect flow: what `make run` and the scheduled deployment run.

    python flows/pipeline.py [--datasets sp500_volatility text] [--pull] [--push] [--params params.yaml]

Steps, each a task: `dvc pull` (optional, when a remote is configured), `dvc repro` (unchanged
stages are skipped; the training stages' comparison flows report to the same Prefect API),
`dvc push` (optional), and publishing: a markdown artifact with the verdicts and a link to
reports/index.html. Without PREFECT_API_URL one temporary Prefect server serves the whole run,
so the training stages don't each start their own.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task

from seqbench import pipeline as steps
from seqbench.config import load_params
from seqbench.errors import ConfigError
from seqbench.locks import workspace_lock
from seqbench.orchestration import quiet_user_errors

ARTIFACT_KEY = "seqbench-verdicts"


def log_line(line: str) -> None:
    get_run_logger().info(line)


# A remote that does not answer is worth retrying; a failed stage is not (DVC's error is final).
@task(name="dvc-pull", retries=3, retry_delay_seconds=[5, 20, 60])
def dvc_pull(root: Path) -> bool:
    if not steps.remote_configured(root):
        get_run_logger().warning("no DVC remote is configured: nothing to pull")
        return False
    steps.run_dvc(["pull", "--allow-missing"], root, log_line)
    return True


@task(name="dvc-repro")
def dvc_repro(root: Path, chosen: list[str], declared: list[str]) -> dict:
    output = "\n".join(steps.run_dvc(args, root, log_line) for args in steps.repro_commands(chosen, declared))
    outcomes = steps.stage_outcomes(output)
    get_run_logger().info(
        f"stages run: {', '.join(outcomes['ran']) or 'none'}; "
        f"skipped as unchanged: {', '.join(outcomes['skipped']) or 'none'}"
    )
    return outcomes


@task(name="dvc-push", retries=3, retry_delay_seconds=[5, 20, 60])
def dvc_push(root: Path) -> bool:
    if not steps.remote_configured(root):
        get_run_logger().warning("no DVC remote is configured: nothing to push")
        return False
    steps.run_dvc(["push"], root, log_line)
    return True


@task(name="publish-report")
def publish_report(root: Path, chosen: list[str], outcomes: dict) -> str:
    from prefect.artifacts import create_markdown_artifact

    table = steps.verdict_table(root, chosen, outcomes)
    create_markdown_artifact(markdown=table, key=ARTIFACT_KEY, description="LSTM vs GRU verdicts per dataset")
    get_run_logger().info(table)
    return table


@flow(name="seqbench-pipeline")
def pipeline(datasets: list[str] | None = None, pull: bool | None = None, push: bool | None = None,
             params_path: str = "params.yaml") -> dict:
    """Run the DVC pipeline (optionally pulling and pushing), then publish the verdicts.

    datasets: a subset of params.yaml's datasets (default: all); pull/push default to
    params.yaml's `schedule:` settings.
    """
    quiet_user_errors()
    params_file = Path(params_path).resolve()
    params = load_params(params_file)
    root = params_file.parent
    declared = list(params.datasets)
    chosen = list(datasets or declared)
    unknown = [name for name in chosen if name not in declared]
    if unknown:
        raise ConfigError(f"unknown dataset(s) {', '.join(unknown)}; params.yaml declares: {', '.join(declared)}")
    # One pipeline per workspace, for the whole run; the stages dvc starts inherit the lock.
    with workspace_lock(root):
        if params.schedule.pull if pull is None else pull:
            dvc_pull(root)
        outcomes = dvc_repro(root, chosen, declared)
        if params.schedule.push if push is None else push:
            dvc_push(root)
        publish_report(root, chosen, outcomes)
    return outcomes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", help="only these datasets (default: all in params.yaml)")
    parser.add_argument("--pull", action=argparse.BooleanOptionalAction, default=None, help="dvc pull first")
    parser.add_argument("--push", action=argparse.BooleanOptionalAction, default=None, help="dvc push afterwards")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    from seqbench.errors import exit_code
    from seqbench.orchestration import prefect_api

    def run():
        # Checked before a server starts or any shell sees a dataset name (DVC puts the names
        # into the stages' command lines), and before waiting on anything.
        params_file = Path(args.params).resolve()
        load_params(params_file)
        with workspace_lock(params_file.parent), prefect_api():
            pipeline(args.datasets, args.pull, args.push, args.params)

    return exit_code(run)


if __name__ == "__main__":
    sys.exit(main())
