"""Serve the scheduled pipeline from this process: `make serve` (the primary way).

    python flows/serve.py [--cron "0 2 * * *"] [--timezone UTC] [--interval SECONDS]
                          [--datasets ...] [--pull/--no-pull] [--push/--no-push] [--params params.yaml]

Registers the deployment `seqbench-pipeline/nightly` with the schedule from params.yaml's
`schedule:` (or the options above) and runs each scheduled or hand-triggered flow run here, one at
a time. Needs a Prefect server (PREFECT_API_URL); `make server` starts one. Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seqbench.errors import exit_code


def build_parser(description: str) -> argparse.ArgumentParser:
    """The options flows/serve.py and flows/deploy.py share."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default=None, help="the deployment's name (default: nightly)")
    parser.add_argument("--cron", help="override params.yaml's schedule.cron")
    parser.add_argument("--timezone", help="override params.yaml's schedule.timezone")
    parser.add_argument("--interval", type=float, help="run every SECONDS instead of on the cron schedule")
    parser.add_argument("--datasets", nargs="+", help="only these datasets (default: all)")
    parser.add_argument("--pull", action=argparse.BooleanOptionalAction, default=None, help="dvc pull first")
    parser.add_argument("--push", action=argparse.BooleanOptionalAction, default=None, help="dvc push afterwards")
    parser.add_argument("--params", default="params.yaml")
    return parser


def deployment_settings(args) -> dict:
    """Name, schedule, parameters and concurrency limit of the pipeline deployment."""
    from seqbench.config import load_params
    from seqbench.orchestration.prefect import DEPLOYMENT, one_run_at_a_time, pipeline_schedule

    params_file = Path(args.params).resolve()
    params = load_params(params_file)
    return {
        "name": args.name or DEPLOYMENT,
        "schedules": [pipeline_schedule(params.schedule, args.cron, args.timezone, args.interval)],
        "parameters": {
            "datasets": args.datasets,
            "pull": args.pull,
            "push": args.push,
            "params_path": str(params_file),
        },
        "concurrency_limit": one_run_at_a_time(),
    }


def main(argv=None) -> int:
    args = build_parser(__doc__).parse_args(argv)

    def run():
        from seqbench.orchestration.prefect import require_server

        require_server()
        settings = deployment_settings(args)
        from prefect import serve

        from pipeline import pipeline

        serve(pipeline.to_deployment(**settings))

    return exit_code(run)


if __name__ == "__main__":
    sys.exit(main())
