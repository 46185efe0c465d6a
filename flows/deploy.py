"""Register the scheduled pipeline with a process work pool: `make deploy`, then `make worker`.

    python flows/deploy.py [--pool seqbench] [the options of flows/serve.py]

The alternative to `make serve` when runs should be picked up by a worker (`prefect worker start
--pool seqbench`), e.g. one that keeps running while deployments change. The deployment runs the
flow from this folder (no Docker, no git clone): `flow.from_source` with the local path.
"""

from __future__ import annotations

import sys
from pathlib import Path

from seqbench.errors import exit_code

ROOT = Path(__file__).resolve().parents[1]
POOL = "seqbench"


def ensure_pool(name: str) -> None:
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            print(f"created the process work pool '{name}'")
        except ObjectAlreadyExists:
            pass


def main(argv=None) -> int:
    from serve import build_parser, deployment_settings

    parser = build_parser(__doc__)
    parser.add_argument("--pool", default=POOL, help=f"the process work pool (default: {POOL})")
    args = parser.parse_args(argv)

    def run():
        from seqbench.orchestration.prefect import require_server

        require_server()
        settings = deployment_settings(args)
        ensure_pool(args.pool)
        from prefect import flow

        source = flow.from_source(source=str(ROOT), entrypoint="flows/pipeline.py:pipeline")
        source.deploy(work_pool_name=args.pool, print_next_steps=False, ignore_warnings=True, **settings)
        print(
            f"deployment seqbench-pipeline/{settings['name']} registered on pool '{args.pool}'; "
            f"start a worker with `make worker`"
        )

    return exit_code(run)


if __name__ == "__main__":
    sys.exit(main())
