"""The `seqbench` command. DVC stages call these subcommands.

Heavy libraries (pandas, great_expectations, torch, prefect) are imported inside the commands, so
`seqbench --help` answers at once.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from seqbench.errors import SeqbenchError
from seqbench.redact import shown

app = typer.Typer(
    help="Benchmark LSTM against GRU on your sequence data. `seqbench run` (or `make run`, `dvc repro`) runs the "
    "whole pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ParamsOption = Annotated[Path, typer.Option("--params", "-p", help="The params file; its folder is the project root.")]
DatasetArgument = Annotated[str, typer.Argument(help="A dataset name declared in params.yaml.")]


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"seqbench {version('seqbench')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
):
    """The options of `seqbench` itself; the app's help text is Typer's `help=` above."""


def _stderr():
    """The console for progress and errors. Markup is off: messages carry paths, column names and
    sample rows, whose brackets must print as they are; the error prefix asks for it explicitly."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def say(message: str) -> None:
    """A progress line on stderr, as it may reach a terminal (redact.shown: no credentials, no
    control characters)."""
    _stderr().print(shown(message))


def warn(message: str) -> None:
    """A `warning:` line on stderr: something to act on that does not stop the command."""
    from rich.markup import escape

    _stderr().print(f"[bold yellow]warning:[/] {escape(shown(message))}", markup=True)


def user_errors(command):
    """Print a SeqbenchError as a plain message and exit 1; no traceback for bad input."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SeqbenchError as exc:
            from rich.markup import escape

            # Escaped: a message's own brackets (pip install -e '.[glove]') are not markup.
            # Redacted: a message may quote a source URL with its password or token.
            _stderr().print(f"[bold red]error:[/] {escape(shown(str(exc)))}", markup=True, soft_wrap=True)
            raise typer.Exit(1) from None
        except typer.Exit:  # a chosen exit code (a flow's, passed on): no error of ours
            raise
        except Exception as exc:
            if os.environ.get("SEQBENCH_DEBUG"):
                raise
            from rich.markup import escape

            _stderr().print(
                f"[bold red]internal error:[/] {type(exc).__name__}: {escape(shown(str(exc)))}\n"
                "This is a bug in seqbench; rerun with SEQBENCH_DEBUG=1 for the traceback.",
                markup=True,
                soft_wrap=True,
            )
            raise typer.Exit(2) from None

    return wrapper


def holds_workspace(command):
    """Run a writing command under the workspace lock of its project (the folder of --params):
    one pipeline per workspace. A stage of `make run` finds the lock held by its pipeline."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from seqbench.locks import workspace_lock

        with workspace_lock(Path(kwargs.get("params") or "params.yaml").resolve().parent):
            return command(*args, **kwargs)

    return wrapper


# ---- the flows: the same scripts `make run` and dvc.yaml run ------------------------------------
#
# `seqbench run`, `search` and `train` run flows/pipeline.py, search.py and train.py as they are,
# with this Python, in a process of their own: one code path, so the command and `make run` (or
# the DVC stage) cannot drift apart; the scripts' own argument checks (an unknown dataset fails
# before a Prefect server starts) and exit codes apply; and Prefect stays out of this process,
# which answers `--help` at once. The flows live in the project's checkout beside src/, not in
# the package, so they are found from this file (an editable install: `make install`).

PROJECT = Path(__file__).resolve().parents[2]


def flow_script(name: str) -> Path:
    """flows/NAME.py of the checkout this package is installed from; else a SeqbenchError."""
    script = PROJECT / "flows" / f"{name}.py"
    if not script.is_file():
        raise SeqbenchError(
            f"{script}: not found; `seqbench {name}` runs the project's flows, so install seqbench from a "
            "clone of the project (`make install`, or `pip install -e .` there)"
        )
    return script


def run_flow(name: str, args: list[str]) -> None:
    """Run flows/NAME.py ARGS with this Python and exit with its exit code."""
    import subprocess

    env = dict(os.environ)
    # As `make run`: Prefect keeps its database and settings inside the project.
    env.setdefault("PREFECT_HOME", str(PROJECT / ".prefect"))
    process = subprocess.Popen([sys.executable, str(flow_script(name)), *args], env=env)
    try:
        code = process.wait()
    except KeyboardInterrupt:
        # Ctrl-C reached the flow too (one process group): wait while it stops its server and workers.
        code = process.wait()
    if code:
        raise typer.Exit(code if code > 0 else 128 - code)  # killed by signal N: 128 + N, as a shell says


@app.command(context_settings={"allow_extra_args": True})
@user_errors
def run(
    ctx: typer.Context,
    datasets: Annotated[
        list[str] | None,
        typer.Option(
            "--datasets",
            "-d",
            help="Only these datasets (default: every one in params.yaml): --datasets a b.",
            show_default=False,
        ),
    ] = None,
    pull: Annotated[
        bool | None,
        typer.Option(
            "--pull/--no-pull", help="`dvc pull` first (default: params.yaml's schedule.pull).", show_default=False
        ),
    ] = None,
    push: Annotated[
        bool | None,
        typer.Option("--push/--no-push", help="`dvc push` afterwards (default: schedule.push).", show_default=False),
    ] = None,
    params: ParamsOption = Path("params.yaml"),
):
    """Run the whole pipeline, as `make run` does; the report lands in reports/index.html.

    Every DVC stage of the chosen datasets runs as a Prefect task (flows/pipeline.py); DVC reruns
    only what changed. An unknown dataset stops it before anything runs. Each dataset's
    validation page lands in reports/validation/DATASET/index.html.
    """
    chosen = run_datasets(datasets, ctx.args)
    args = ["--params", str(params)]
    if chosen:
        args += ["--datasets", *chosen]
    for flag, value in (("pull", pull), ("push", push)):
        if value is not None:
            args.append(f"--{flag}" if value else f"--no-{flag}")
    run_flow("pipeline", args)


def run_datasets(option: list[str] | None, extra: list[str]) -> list[str]:
    """The datasets of `seqbench run --datasets a b`: Click gives an option one value, so the
    names after the first arrive as extra arguments; extra names without --datasets are an error."""
    if extra and not option:
        raise SeqbenchError(
            f"unexpected argument(s) {' '.join(extra)}; to choose datasets: --datasets {' '.join(extra)}"
        )
    return [*(option or []), *extra]


@app.command()
@user_errors
@holds_workspace
def ingest(dataset: DatasetArgument, params: ParamsOption = Path("params.yaml")):
    """Read DATASET's source and write data/raw/DATASET.parquet plus a JSON manifest."""
    from seqbench.stages.ingest import ingest as run_ingest

    started = time.perf_counter()
    say(f"ingest {dataset}: reading source …")
    manifest = run_ingest(dataset, params)
    say(
        f"ingest {dataset}: {manifest['rows']:,} rows → data/raw/{dataset}.parquet "
        f"({time.perf_counter() - started:.1f}s)"
    )


@app.command()
@user_errors
@holds_workspace
def validate(dataset: DatasetArgument, params: ParamsOption = Path("params.yaml")):
    """Check data/raw/DATASET.parquet with its kind's Great Expectations suite.

    Clean rows go to data/validated/, failing rows to data/quarantine/ with the failed checks,
    the result to reports/validation/DATASET.json and a page of the checks (with sample failing
    rows) to reports/validation/DATASET/index.html.
    """
    from seqbench.stages.validate import validate as run_validate

    started = time.perf_counter()
    say(f"validate {dataset}: running checks …")
    report = run_validate(dataset, params)
    failed = [c["check"] for c in report["checks"] if not c["success"]]
    say(
        f"validate {dataset}: {report['rows_validated']:,} rows valid, "
        f"{report['rows_quarantined']:,} quarantined"
        + (f" (failed: {', '.join(failed)})" if failed else "")
        + f" ({time.perf_counter() - started:.1f}s)"
    )


@app.command()
@user_errors
@holds_workspace
def prepare(dataset: DatasetArgument, params: ParamsOption = Path("params.yaml")):
    """Turn data/validated/DATASET.parquet into model-ready arrays in data/prepared/DATASET/.

    Splits, scalers and vocabularies are fit on the training split only.
    """
    from seqbench.stages.prepare import prepare as run_prepare
    from seqbench.stages.prepare import small_split_warnings

    started = time.perf_counter()
    meta = run_prepare(dataset, params)
    sizes = ", ".join(f"{split} {n:,}" for split, n in meta["sizes"].items())
    say(f"prepare {dataset}: {sizes} ({time.perf_counter() - started:.1f}s)")
    for line in small_split_warnings(meta):
        warn(f"prepare {line}")


@app.command()
@user_errors
def search(dataset: DatasetArgument, params: ParamsOption = Path("params.yaml")):
    """Search each cell's configuration for DATASET, the same budget for both (the search stage).

    Runs flows/search.py DATASET, as the search@DATASET stage does, and writes
    reports/search/DATASET.json. Needs `seqbench prepare DATASET` first; `train.search` in
    params.yaml sets the trials.
    """
    run_flow("search", [dataset, "--params", str(params)])


@app.command()
@user_errors
def train(dataset: DatasetArgument, params: ParamsOption = Path("params.yaml")):
    """Train LSTM and GRU with every seed on DATASET (the train stage).

    Runs flows/train.py DATASET, as the train@DATASET stage does: runs go to models/DATASET/runs/,
    the summary to reports/train/DATASET.json. Needs `seqbench search DATASET` first (each
    cell's chosen configuration).
    """
    run_flow("train", [dataset, "--params", str(params)])


@app.command()
@user_errors
def predict(
    model: Annotated[
        str,
        typer.Argument(
            help="A run folder (models/DATASET/runs/CELL/seedK), its model.pt, or a dataset name for its best run."
        ),
    ],
    input: Annotated[str, typer.Argument(help="A file in the dataset's canonical schema (CSV, Parquet, JSON lines).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write predictions: .csv or .parquet.")
    ] = Path("predictions.csv"),
    params: ParamsOption = Path("params.yaml"),
):
    """Predict with a trained model on new data in the canonical schema of its kind."""
    from seqbench.config import load_params
    from seqbench.training.predict import predict_file

    # The input is read within params.yaml's `ingest:` bounds, where there is a params file.
    limits = load_params(params).ingest if params.exists() else None
    run_dir, rows = predict_file(model, input, str(output), params.resolve().parent, limits)
    say(f"predict: {rows:,} predictions from {run_dir} → {output}")


@app.command()
@user_errors
@holds_workspace
def evaluate(dataset: DatasetArgument, params: ParamsOption = Path("params.yaml")):
    """Score every trained run of DATASET and its baselines on the test split; run the paired tests.

    Writes reports/eval/DATASET.json (detail), reports/eval/DATASET/predictions.csv and
    reports/metrics/DATASET.json (headline numbers for `dvc metrics show`).
    """
    from seqbench.stages.evaluate import evaluate as run_evaluate

    started = time.perf_counter()
    say(f"evaluate {dataset}: scoring models and baselines on the test split …")
    result = run_evaluate(dataset, params)
    for comparison in result["comparisons"]:
        verdict, effect = comparison["verdict"], comparison["effect"]
        p_value = "" if verdict["p_value"] is None else f", Holm-adjusted p = {verdict['p_value']:.3g}"
        say(
            f"evaluate {dataset}: {comparison['a']} vs {comparison['b']}: {verdict['text']} "
            f"({effect['difference']:+.4g} [{effect['low']:+.4g}, {effect['high']:+.4g}]{p_value})"
        )
    say(f"evaluate {dataset}: done ({time.perf_counter() - started:.1f}s)")


@app.command()
@user_errors
@holds_workspace
def report(
    params: ParamsOption = Path("params.yaml"),
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path(
        "reports/index.html"
    ),
):
    """Render the HTML comparison report from every dataset's evaluation (opens offline)."""
    from seqbench.stages.report import render_report

    path = render_report(params, output)
    say(f"report: {path}")


@app.command()
@user_errors
@holds_workspace
def suite(
    name: Annotated[str, typer.Argument(help="A suite declared under `suites:` in params.yaml.")],
    params: ParamsOption = Path("params.yaml"),
):
    """LSTM vs GRU across suite NAME's datasets: the four answers counted, the Bayesian
    signed-rank test, Wilcoxon, Friedman and ranks.

    Writes reports/suite/NAME.json from the datasets' reports/eval/*.json.
    """
    from seqbench.stages.suite import run_suite

    result = run_suite(name, params)
    ranks = result["friedman"]["average_ranks"]
    say(
        f"suite {name}: {result['summary']} Wilcoxon p = {result['wilcoxon']['p_value']:.3g}; Friedman p = "
        f"{result['friedman']['p_value']:.3g}; average ranks: " + ", ".join(f"{m} {r:.2f}" for m, r in ranks.items())
    )


@app.command("suite-pipeline")
@user_errors
def suite_pipeline(
    params: Annotated[Path, typer.Argument(help="The suite workspace's params file, e.g. suites/ucr/params.yaml.")],
):
    """Write the DVC pipeline (dvc.yaml) of a suite workspace beside its params file.

    It is the project's dvc.yaml with code paths rebased and the suite stages added (`make suite`
    runs this first).
    """
    from seqbench.orchestration.workspace import write_suite_pipeline

    path = write_suite_pipeline(params)
    say(f"suite pipeline: {path}")


@app.command()
@user_errors
def datasets(params: ParamsOption = Path("params.yaml")):
    """List the datasets declared in params.yaml and how far each has got."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from seqbench.config import load_params

    declared = load_params(params)

    table = Table("dataset", "kind", "source", "raw", "validated")
    for name, cfg in declared.datasets.items():
        status = dataset_status(name, cfg, params.resolve().parent)
        # Text cells: a source path or URL with brackets is not markup.
        table.add_row(
            *(Text(shown(str(cell))) for cell in (name, cfg.kind, status["source"], status["raw"], status["validated"]))
        )
    Console().print(table)


def dataset_status(name: str, cfg, root: Path) -> dict:
    """How far a dataset has got, read from the files its stages leave behind."""
    from seqbench.paths import Paths
    from seqbench.redact import redact_source

    paths = Paths(root)
    source = redact_source(cfg.source)  # `seqbench datasets` prints it: no credentials
    source = source if isinstance(source, str) else ", ".join(f"{k}: {v}" for k, v in source.items())
    manifest = _read_json(paths.manifest(name))
    if manifest and paths.raw(name).exists():
        raw = f"{manifest['rows']:,} rows, {ingested_at(paths.raw(name))}"
    else:
        raw = "not ingested"
    report = _read_json(paths.validation_report(name))
    if report is None:
        validated = "not validated"
    elif report.get("success"):
        validated = f"ok: {report['rows_validated']:,} rows, {report['rows_quarantined']:,} quarantined"
    else:
        failed = [c["check"] for c in report.get("checks", []) if not c["success"]]
        validated = f"FAILED: {', '.join(failed) or 'too much quarantined'}"
    return {"source": source, "raw": raw, "validated": validated}


def ingested_at(table: Path) -> str:
    """When ingest last wrote the table (its file's time, UTC): the manifest holds no time, so
    that an unchanged source gives unchanged outputs."""
    from datetime import datetime, timezone

    return datetime.fromtimestamp(table.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d %H:%M")


def _read_json(path: Path) -> dict | None:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def main():
    app()


if __name__ == "__main__":
    sys.exit(main())
